/**
 * `tapedeck export --out FILE` writes FILE.sha256 beside a regular FILE (sha256sum's form),
 * so that damage to an export is found: NDJSON and CSV have no checksum, and Parquet's page
 * CRC is not written. Checked with the real sha256sum, over every format, with seeded byte
 * flips anywhere in the file.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Archive } from '../storage/index.js';
import { tapedeckCli, xorByte } from './helpers/damage.js';
import { tmpDir } from './helpers/tmp.js';

const execFileP = promisify(execFile);
const T0 = 1_700_000_000_000_000;
const SEED = Number(process.env.EXPORT_SUM_SEED ?? Date.now() % 1_000_000);

/** mulberry32: the flips' offsets and masks. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function smallArchive(): Promise<string> {
  const dir = join(await tmpDir(), 'archive');
  const archive = await Archive.open(dir, { flushIntervalMs: 0 });
  const writer = archive.writer;
  if (!writer) throw new Error('opened read-only');
  for (let b = 0; b < 40; b++) writer.append([[`/d/x${b % 3}`, b + 0.25], ['/d/s', `text ${b}`], ['/d/o', { n: b, ok: b % 2 === 0 }]], T0 + b * 1_000_000);
  await writer.flush();
  await archive.close();
  return dir;
}

/** sha256sum -c in FILE's directory: its exit code and output. */
async function sha256sumCheck(sumFile: string, cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await execFileP('sha256sum', ['-c', sumFile], { cwd });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

describe('export checksums', () => {
  it(`are written beside every format and find any flipped byte (seed ${SEED})`, async () => {
    console.log(`export-checksum seed ${SEED} (EXPORT_SUM_SEED=${SEED} to repeat)`);
    const random = rng(SEED);
    const archive = await smallArchive();
    const dir = await tmpDir();
    for (const format of ['ndjson', 'csv', 'parquet']) {
      const out = join(dir, `all.${format}`);
      const r = await tapedeckCli('export', '--archive', archive, '--format', format, '--out', out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe(`exported 40 batches to ${out}\nits SHA-256 is in ${out}.sha256\n`);
      const bytes = await readFile(out);
      expect(await readFile(`${out}.sha256`, 'utf8')).toBe(`${createHash('sha256').update(bytes).digest('hex')}  all.${format}\n`);
      expect(await sha256sumCheck(`all.${format}.sha256`, dir)).toEqual({ code: 0, out: `all.${format}: OK\n` });
      // A flip in the first byte, the last and seeded ones between: each is found.
      const offsets = [0, bytes.length - 1, ...Array.from({ length: 6 }, () => Math.floor(random() * bytes.length))];
      for (const offset of offsets) {
        const mask = 1 + Math.floor(random() * 255);
        await xorByte(out, offset, mask);
        const bad = await sha256sumCheck(`all.${format}.sha256`, dir);
        expect(bad, `${format}: byte ${offset} ^ ${mask}`).toEqual({ code: 1, out: `all.${format}: FAILED\n` });
        await xorByte(out, offset, mask);
      }
      expect((await sha256sumCheck(`all.${format}.sha256`, dir)).code).toBe(0);
    }
  });

  it('replace a checksum left by an earlier export, and leave nothing stale when the checksum cannot be written', async () => {
    const archive = await smallArchive();
    const dir = await tmpDir();
    const out = join(dir, 'x.ndjson');
    await writeFile(`${out}.sha256`, `${'0'.repeat(64)}  x.ndjson\n`);
    expect((await tapedeckCli('export', '--archive', archive, '--out', out)).code).toBe(0);
    expect((await sha256sumCheck('x.ndjson.sha256', dir)).code).toBe(0);

    // The checksum's name is taken by a directory: nothing is started, the earlier export stays whole.
    const before = await readFile(out);
    await mkdir(join(dir, 'y.ndjson.sha256'));
    const y = join(dir, 'y.ndjson');
    await writeFile(y, before);
    const r = await tapedeckCli('export', '--archive', archive, '--glob', '/d/s', '--out', y);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tapedeck: TPD_IO: cannot write --out .*y\.ndjson: EISDIR/);
    expect(await readFile(y)).toEqual(before);
  });

  it('are not written for a device (/dev/null)', async () => {
    const archive = await smallArchive();
    const r = await tapedeckCli('export', '--archive', archive, '--glob', '/d/x0', '--out', '/dev/null');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('exported 14 batches to /dev/null\n');
    expect(existsSync('/dev/null.sha256')).toBe(false);
  });
});
