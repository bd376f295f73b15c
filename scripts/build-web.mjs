// Bundles protocol/web.ts (the glob matcher and the JSON value codec, with what they import)
// into clients/web/vendor/protocol.js, so the web player matches paths and reads values with
// the server's own code rather than a copy. Run by
// `npm run build`; server/routes/web.ts runs it too when the bundle is missing or older than
// its sources (a checkout run from the sources). Written to a temporary name, then renamed:
// processes building at once never serve a half-written file.
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import process from 'node:process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_PROTOCOL_ENTRY = join(ROOT, 'protocol', 'web.ts');
export const WEB_PROTOCOL_OUT = join(ROOT, 'clients', 'web', 'vendor', 'protocol.js');
/** The sources the bundle is built from (for the freshness check). */
export const WEB_PROTOCOL_SOURCES = ['web.ts', 'glob.ts', 'limits.ts', 'errors.ts', 'value-json.ts', 'value.ts', 'close-codes.ts'].map((f) => join(ROOT, 'protocol', f));

/** True when the bundle exists and is newer than each of its sources. */
export async function webProtocolFresh(out = WEB_PROTOCOL_OUT) {
  const built = await stat(out).catch(() => null);
  if (!built) return false;
  for (const src of WEB_PROTOCOL_SOURCES) {
    const s = await stat(src).catch(() => null);
    if (s && s.mtimeMs > built.mtimeMs) return false;
  }
  return true;
}

export async function buildWebProtocol(out = WEB_PROTOCOL_OUT) {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [WEB_PROTOCOL_ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    legalComments: 'none',
    banner: { js: '// Built from protocol/glob.ts and protocol/value-json.ts (entry protocol/web.ts) by scripts/build-web.mjs; do not edit.' },
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error('esbuild produced no output');
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await writeFile(tmp, file.contents);
  await rename(tmp, out);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildWebProtocol();
  process.stdout.write(`built ${out}\n`);
}
