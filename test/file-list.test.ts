import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Archive } from '../storage/archive.js';
import { BlockTable, FileList, type FileEntry, type NewFileEntry } from '../storage/file-list.js';
import { isTapedeckError } from '../protocol/errors.js';
import { tmpDir } from './helpers/tmp.js';

function file(seq: number, over: Partial<NewFileEntry> = {}): NewFileEntry {
  return { seq, name: `f${seq}`, location: 'local', firstTs: seq * 10, lastTs: seq * 10 + 9, committedBytes: 100, sealed: true, damaged: false, ...over };
}

const remote = (seq: number): Omit<NewFileEntry, 'location'> => ({ seq, name: `r${seq}`, firstTs: null, lastTs: seq * 10 + 9, committedBytes: 0, sealed: true, damaged: false });

function listOf(...seqs: number[]): FileList {
  const l = new FileList();
  for (const s of seqs) l.append(file(s));
  return l;
}

const seqs = (files: readonly FileEntry[]): number[] => files.map((f) => f.seq);

describe('FileList', () => {
  it('keeps seq order when a remote file older than every local one is inserted, and finds files by seq around it', () => {
    const l = listOf(3, 4, 7);
    l.insertRemote(remote(0));
    l.insertRemote(remote(5));
    expect(seqs(l.all())).toEqual([0, 3, 4, 5, 7]);
    expect(l.bySeq(5)?.location).toBe('remote');
    expect(l.bySeq(6)).toBeUndefined();
    expect(l.after(4)?.seq).toBe(5);
    expect(l.after(5)?.seq).toBe(7);
    expect(l.after(6)?.seq).toBe(7);
    expect(l.after(7)).toBeUndefined();
    expect(l.after(-1)?.seq).toBe(0);
    expect(l.before(3)?.seq).toBe(0);
    expect(l.before(6)?.seq).toBe(5);
    expect(l.before(0)).toBeUndefined();
    expect(l.before(100)?.seq).toBe(7);
    expect([l.first()?.seq, l.last()?.seq, l.length]).toEqual([0, 7, 5]);
  });

  it('refuses a seq it already holds and an append that is not after the last file (TPD_INTERNAL: a bug, never input)', () => {
    const l = listOf(1, 2);
    for (const bad of [() => l.insertRemote(remote(2)), () => l.append(file(2)), () => l.append(file(0)), () => l.markDamaged(9)]) {
      let err: unknown;
      try {
        bad();
      } catch (e) {
        err = e;
      }
      expect(isTapedeckError(err, 'TPD_INTERNAL')).toBe(true);
    }
    expect(seqs(l.all())).toEqual([1, 2]);
  });

  it('hands out snapshots that a later insert does not change, and live entries that only it writes', () => {
    const l = listOf(2, 4);
    const before = l.all();
    const held = l.bySeq(4) as FileEntry;
    l.insertRemote(remote(3));
    l.markLocation(4, 'remote');
    l.sealAs(4, 'renamed');
    l.extend(4, 500, { firstTs: 1, lastTs: 99 });
    expect(seqs(before)).toEqual([2, 4]);
    expect(seqs(l.all())).toEqual([2, 3, 4]);
    expect(held).toMatchObject({ location: 'remote', name: 'renamed', sealed: true, committedBytes: 500, firstTs: 40, lastTs: 99 });
    // @ts-expect-error entries are read-only outside FileList
    held.location = 'local';
    // @ts-expect-error snapshots are read-only
    before.push(held);
  });

  it('forgets the block table of a file known by name once it is indexed', () => {
    const l = new FileList();
    l.insertRemote(remote(1));
    l.setTable(1, new BlockTable());
    l.setIndexed(1, { firstTs: 5, lastTs: 15, committedBytes: 300, damaged: true });
    expect(l.bySeq(1)).toMatchObject({ firstTs: 5, lastTs: 15, committedBytes: 300, damaged: true, table: undefined, location: 'remote' });
  });

  it('a reader walking by seq neither skips nor repeats a file while remote files are inserted at random (seeded)', () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`file-list walk property seed ${seed} (FC_SEED=${seed} to replay)`);
    // Known seqs are even; inserts fill odd seqs. Each step either moves a reader or inserts.
    const schedule = fc.record({
      known: fc.integer({ min: 1, max: 12 }),
      steps: fc.array(fc.oneof(fc.constant<'forward' | 'backward'>('forward'), fc.constant<'forward' | 'backward'>('backward'), fc.nat(30)), { maxLength: 80 }),
    });
    fc.assert(
      fc.property(schedule, ({ known, steps }) => {
        const l = listOf(...Array.from({ length: known }, (_, i) => 2 * i));
        const initial = seqs(l.all());
        // Each reader keeps its position at the end, like a cursor waiting for more.
        const seenFwd = [l.first()?.seq as number];
        const seenBack = [l.last()?.seq as number];
        /** Inserted seq -> where each reader was then. */
        const inserted = new Map<number, { fwd: number; back: number }>();
        const lastFwd = (): number => seenFwd.at(-1) as number;
        const lastBack = (): number => seenBack.at(-1) as number;
        const moveFwd = (): boolean => {
          const f = l.after(lastFwd());
          if (f) seenFwd.push(f.seq);
          return f !== undefined;
        };
        const moveBack = (): boolean => {
          const f = l.before(lastBack());
          if (f) seenBack.push(f.seq);
          return f !== undefined;
        };
        for (const s of steps) {
          if (s === 'forward') moveFwd();
          else if (s === 'backward') moveBack();
          else {
            const seq = 2 * (s % known) + 1;
            if (l.bySeq(seq)) continue;
            l.insertRemote(remote(seq));
            inserted.set(seq, { fwd: lastFwd(), back: lastBack() });
          }
        }
        while (moveFwd());
        while (moveBack());
        // Every file known at the start, plus every file inserted ahead of the reader, once, in order.
        const expectFwd = seqs(l.all()).filter((q) => !inserted.has(q) || q > (inserted.get(q) as { fwd: number }).fwd);
        const expectBack = seqs(l.all()).filter((q) => !inserted.has(q) || q < (inserted.get(q) as { back: number }).back).reverse();
        expect(seenFwd).toEqual(expectFwd);
        expect(seenBack).toEqual(expectBack);
        for (const q of initial) expect(seenFwd).toContain(q);
      }),
      { seed, numRuns: 300 },
    );
  });
});

describe('the archive keeps its files in a FileList', () => {
  it('lists the dictionary and image blocks of a new current once in its block table', async () => {
    const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
    a.writer!.append([['/a', 1]], 1000);
    await a.writer!.rotate();
    a.writer!.append([['/a', 2]], 2000);
    await a.writer!.flush();
    for (const f of a.files) {
      const offsets = a.table(f).rows.map((r) => r.offset);
      expect(new Set(offsets).size, `${f.name}: ${offsets.join(', ')}`).toBe(offsets.length);
    }
    const reopened = a.totals().blocks;
    await a.close();
    const b = await Archive.open(a.dir, { readonly: true });
    expect(b.totals().blocks).toBe(reopened);
    await b.close();
  });
});
