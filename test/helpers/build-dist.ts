/**
 * Builds dist/ for the tests: every source of protocol/, storage/, server/ and clients/ (what
 * `npm run build` compiles) and test/helpers/ (the child processes the crash and durable tests
 * spawn), transpiled file by file with esbuild into the same layout tsc uses. Run by
 * test/global-setup.ts at the start of every vitest run (and rerun), so a child process never
 * runs code older than the sources; type checking stays with `npm run typecheck`.
 *
 * Each file is written only when its bytes change, to a temporary name and then renamed: two
 * runs building at once (two terminals, or helpers sharing a tree) never let a child load a
 * half-written module.
 */
import { readFile, readdir, rename, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');
const SOURCE_DIRS = ['protocol', 'storage', 'server', 'clients', join('test', 'helpers')];

async function sources(root: string, dirs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    for (const f of await readdir(join(root, d), { recursive: true })) {
      if (f.endsWith('.ts') && !f.endsWith('.d.ts')) out.push(join(root, d, f));
    }
  }
  return out;
}

async function writeIfChanged(path: string, bytes: Uint8Array): Promise<boolean> {
  const old = await readFile(path).catch(() => null);
  if (old && Buffer.compare(old, bytes) === 0) return false;
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
  return true;
}

/**
 * Transpiles the sources into dist/ (or `o.root`'s dirs into `o.root`/dist, for the test of
 * this function); returns how many sources there are and how many output files changed.
 * Throws on a syntax error.
 */
export async function buildDist(o: { root: string; dirs: readonly string[] } = { root: ROOT, dirs: SOURCE_DIRS }): Promise<{ files: number; written: number }> {
  const entryPoints = await sources(o.root, o.dirs);
  const dist = join(o.root, 'dist');
  const result = await build({
    entryPoints,
    outdir: dist,
    outbase: o.root,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    write: false,
    logLevel: 'silent',
  });
  let written = 0;
  for (const f of result.outputFiles) {
    if (relative(dist, f.path).startsWith('..')) throw new Error(`buildDist: ${f.path} is outside dist/`);
    if (await writeIfChanged(f.path, f.contents)) written++;
  }
  return { files: entryPoints.length, written };
}
