/**
 * The test run's own machinery: the dist/ build that spawned children run (never older than
 * the sources), the names that keep test files apart on the shared broker and Redis, and the
 * printed seeds of random schedules.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { buildDist } from './helpers/build-dist.js';
import { uniqueName } from './helpers/peers.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

async function tree(files: Record<string, string>): Promise<string> {
  const root = await tmpDir('tapedeck-build-');
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

/** Imports a built module under a fresh URL (the module cache would hand back the first build). */
async function load(path: string, version: number): Promise<Record<string, unknown>> {
  return (await import(`${pathToFileURL(path).href}?v=${version}`)) as Record<string, unknown>;
}

describe('dist/ for the spawned children', () => {
  it('builds every source with the layout tsc uses, type-only imports gone, and the output runs', async () => {
    const root = await tree({
      'lib/a.ts': "import type { B } from './sub/b.js';\nimport { two } from './sub/b.js';\nexport const answer = (x: B): number => x.n + two;\n",
      'lib/sub/b.ts': 'export interface B { n: number }\nexport const two: number = 2;\n',
      'lib/types.d.ts': 'export type Nothing = never;\n',
    });
    const r = await buildDist({ root, dirs: ['lib'] });
    expect(r).toEqual({ files: 2, written: 4 });
    const a = await load(join(root, 'dist', 'lib', 'a.js'), 1);
    expect((a.answer as (x: { n: number }) => number)({ n: 40 })).toBe(42);
    expect(await readFile(join(root, 'dist', 'lib', 'a.js.map'), 'utf8')).toContain('a.ts');
    await expect(stat(join(root, 'dist', 'lib', 'types.js'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rebuilds an edited source on the next build and leaves unchanged outputs untouched', async () => {
    const root = await tree({ 'lib/a.ts': 'export const v: number = 1;\n', 'lib/b.ts': 'export const w = 1;\n' });
    await buildDist({ root, dirs: ['lib'] });
    const bBefore = await stat(join(root, 'dist', 'lib', 'b.js'));
    expect(await buildDist({ root, dirs: ['lib'] })).toEqual({ files: 2, written: 0 });
    await writeFile(join(root, 'lib', 'a.ts'), 'export const v: number = 2;\n');
    // The output of a.ts and its map change; b.js is not rewritten.
    expect((await buildDist({ root, dirs: ['lib'] })).written).toBeGreaterThanOrEqual(1);
    expect((await load(join(root, 'dist', 'lib', 'a.js'), 2)).v).toBe(2);
    expect((await stat(join(root, 'dist', 'lib', 'b.js'))).mtimeMs).toBe(bBefore.mtimeMs);
  });

  it('fails the build on a syntax error, naming the file, and keeps the previous output whole', async () => {
    const root = await tree({ 'lib/a.ts': 'export const v = 1;\n' });
    await buildDist({ root, dirs: ['lib'] });
    const before = await readFile(join(root, 'dist', 'lib', 'a.js'), 'utf8');
    await writeFile(join(root, 'lib', 'a.ts'), 'export const v = (;\n');
    await expect(buildDist({ root, dirs: ['lib'] })).rejects.toThrow(/a\.ts/);
    expect(await readFile(join(root, 'dist', 'lib', 'a.js'), 'utf8')).toBe(before);
  });
});

describe('names on the shared peers', () => {
  it('are distinct, keep their base, and fit Kafka topic, consumer group, source and cluster names', () => {
    const names = Array.from({ length: 1000 }, () => uniqueName('src-json'));
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) {
      expect(n.startsWith('src-json-')).toBe(true);
      // Kafka topic names, and the config's source names (^[A-Za-z0-9_.-]{1,64}$).
      expect(n).toMatch(/^[A-Za-z0-9_.-]{1,64}$/);
    }
  });
});

describe('schedule seeds', () => {
  it('come from the environment to replay a run, are printed, and refuse a seed that is not an integer', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    onTestFinished(() => {
      log.mockRestore();
      vi.unstubAllEnvs();
    });
    vi.stubEnv('TPD_TEST_SEED', '4242');
    expect(scheduleSeed('TPD_TEST_SEED', 'infra')).toBe(4242);
    expect(log).toHaveBeenLastCalledWith('infra seed 4242 (TPD_TEST_SEED=4242 to replay)');
    vi.stubEnv('TPD_TEST_SEED', '');
    const fresh = scheduleSeed('TPD_TEST_SEED', 'infra');
    expect(Number.isSafeInteger(fresh)).toBe(true);
    expect(log).toHaveBeenLastCalledWith(`infra seed ${fresh} (TPD_TEST_SEED=${fresh} to replay)`);
    vi.stubEnv('TPD_TEST_SEED', 'abc');
    expect(() => scheduleSeed('TPD_TEST_SEED', 'infra')).toThrow(/TPD_TEST_SEED=abc: not an integer seed/);
  });
});
