/**
 * The coverage journal on a full disk. An append that the disk refused part of the way (a
 * short write: the line's first bytes fit the file's last page, the rest did not) resolved
 * as written, the line cut short without its newline; the next append, once space was back,
 * went on the same line, and reading the journal reported both as damaged (checksum
 * mismatch), an event acknowledged by its append lost. Every append now leaves the journal
 * as it was or holds its whole line: an append that resolves is read back, one that fails
 * is absent, and the journal reads clean. AUDIT11_JOURNAL_SEED=<n> replays the slivers.
 */
import { stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JournalWriter, readJournal } from '../storage/coverage-journal.js';
import type { CoverageEvent } from '../protocol/coverage.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const ROUNDS = 12;

describe('the coverage journal on a full disk', () => {
  const fs = useTmpfs('tapedeck-a11-journal-', 'the journal full-disk test');

  it('an append that resolves is read back whole, one that fails leaves nothing, and the journal stays clean', async (ctx) => {
    if (!fs.mounted) return ctx.skip();
    const seed = scheduleSeed('AUDIT11_JOURNAL_SEED', 'audit11-storage-journal-full');
    const r = rng(seed);
    const dir = fs.dir;
    const w = new JournalWriter(dir, false);
    const kept: CoverageEvent[] = [];
    let refused = 0;
    let n = 0;
    const event = (): CoverageEvent => ({ kind: 'source-down', run: 'r1', atUs: 1_760_000_000_000_000 + n++, source: `s${n % 5}`, reason: 'x'.repeat(20 + Math.floor(r() * 400)) });
    const append = async (): Promise<boolean> => {
      const e = event();
      try {
        await w.append(e);
        kept.push(e);
        return true;
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code, String(err)).toBe('ENOSPC');
        refused++;
        return false;
      }
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < 1 + Math.floor(r() * 6); i++) await append();
      const filler = await fillDisk(dir);
      // A sliver of a page or two: the next lines cross the journal's last page.
      await truncate(filler, Math.max(0, (await stat(filler)).size - Math.floor(r() * 2) * 4096));
      for (let i = 0; i < 30 && (await append()); i++);
      await unlink(filler);
      const where = `seed ${seed}, round ${round}`;
      const j = await readJournal(dir);
      expect(j.problems, where).toEqual([]);
      expect(j.torn, where).toBe(false);
      expect(j.events, where).toEqual(kept);
    }
    expect(refused, `seed ${seed}: the disk never refused an append`).toBeGreaterThan(0);
    await unlink(join(dir, 'coverage.log'));
  });
});
