/**
 * Damage to the coverage journal (`coverage.log`): every byte changed (seeded masks) and
 * zeroed, a run of zeros (what a file system leaves after a crash), a cut at every length,
 * a file of zeros. Each time: every event read is one that was written, in order; an event
 * that was written whole and is not read back is reported (a problem, and `verify` fails);
 * a cut (a torn append, or an older copy) reads every line whole before it, quietly.
 *
 * DAMAGE_COVERAGE_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CoverageEvent } from '../protocol/coverage.js';
import { COVERAGE_FILE, JournalWriter, readJournal } from '../storage/coverage-journal.js';
import { verifyArchive } from '../storage/verify.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

const SEED = scheduleSeed('DAMAGE_COVERAGE_SEED', 'damage-coverage');

function events(r: () => number, n: number): CoverageEvent[] {
  const out: CoverageEvent[] = [];
  let at = 1_700_000_000_000_000;
  for (let i = 0; i < n; i++) {
    at += Math.floor(r() * 1e9);
    const k = Math.floor(r() * 5);
    const run = `run-${Math.floor(i / 4)}`;
    if (k === 0) out.push({ kind: 'run-start', run, atUs: at, lastTsUs: r() < 0.3 ? null : at - 5 });
    else if (k === 1) out.push({ kind: 'run-first-batch', run, atUs: at, tsUs: at + 1 });
    else if (k === 2) out.push({ kind: 'run-stop', run, atUs: at, lastTsUs: at - 1 });
    else if (k === 3) out.push({ kind: 'source-down', run, atUs: at, source: `poller ${i % 3} ä`, reason: r() < 0.5 ? 'HTTP 500' : 'timeout "x"' });
    else out.push({ kind: 'source-up', run, atUs: at, source: `poller ${i % 3} ä` });
  }
  return out;
}

describe('a damaged coverage journal', () => {
  it('never reads an altered event, and reports every whole event it loses (bytes, zeros, cuts, a file of zeros)', async () => {
    const r = rng(SEED);
    const root = await tmpDir('tapedeck-coverage-damage-');
    const written = events(r, 6 + Math.floor(r() * 6));
    const src = join(root, 'src');
    await mkdir(src);
    const w = new JournalWriter(src, false);
    for (const e of written) await w.append(e);
    const bytes = await readFile(join(src, COVERAGE_FILE));
    const texts = written.map((e) => JSON.stringify(e));
    const dir = join(root, 'work');
    let n = 0;

    const check = async (what: string, damaged: Buffer, cut = false): Promise<void> => {
      const where = `${what} (seed ${SEED})`;
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      await writeFile(join(dir, COVERAGE_FILE), damaged);
      n++;
      const j = await readJournal(dir);
      // In order, each one written.
      let at = 0;
      for (const e of j.events) {
        const i = texts.indexOf(JSON.stringify(e), at);
        expect(i, `${where}: read an event never written, or out of order: ${JSON.stringify(e)}`).toBeGreaterThanOrEqual(0);
        at = i + 1;
      }
      if (j.events.length === written.length) return;
      // A cut is an older journal, or a torn append: every line whole before the cut is read, quietly.
      if (cut) {
        const whole = damaged.toString('latin1').split('\n').length - 1;
        // A line that lost only its newline is whole: it is read too.
        expect([whole, whole + 1], `${where}: a cut lost a whole line`).toContain(j.events.length);
        expect(j.problems, `${where}: a torn append is no damage`).toEqual([]);
        return;
      }
      expect(j.problems.length, `${where}: lost ${written.length - j.events.length} event(s) without a problem`).toBeGreaterThan(0);
      // verify reads the journal the same way: checked on a seeded sample (it costs a directory scan).
      if (r() < 0.15) expect((await verifyArchive(dir)).ok, `${where}: verify called it clean`).toBe(false);
    };

    for (let i = 0; i < bytes.length; i++) {
      const x = Buffer.from(bytes);
      x[i] = (x[i]! ^ (1 + Math.floor(r() * 255))) & 0xff;
      await check(`byte ${i} xor`, x);
      const z = Buffer.from(bytes);
      z[i] = z[i] === 0 ? 1 : 0;
      await check(`byte ${i} zeroed`, z);
    }
    for (let k = 0; k < 20; k++) {
      const from = Math.floor(r() * bytes.length);
      const z = Buffer.from(bytes);
      z.fill(0, from, Math.min(bytes.length, from + 1 + Math.floor(r() * 600)));
      await check(`zeros from ${from}`, z);
    }
    for (let len = 0; len < bytes.length; len++) await check(`cut at ${len}`, bytes.subarray(0, len), true);
    await check('a file of zeros', Buffer.alloc(bytes.length));
    await check('zeros after the journal (a crash past an append)', Buffer.concat([bytes, Buffer.alloc(4096)]));
    expect(n).toBeGreaterThan(3 * bytes.length);
  });
});
