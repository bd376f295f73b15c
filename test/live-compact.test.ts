/**
 * Compaction by the running server (storage/live-compact.ts): a sealed file replaced under
 * live readers. Cursors left in every state before the swap (at the beginning, mid-block,
 * after a block read by columns, after a seek and a state, after a step back, at the file's
 * end, at the end of all data) read on after it exactly as a cursor born after it does the
 * same, and as the batches were recorded; a read operation in flight holds the swap back
 * (the read gate), and one that never ends makes the swap give up and the file stay as
 * recorded. Recording goes on into `current` meanwhile.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { Archive } from '../storage/archive.js';
import { LiveCompactor } from '../storage/live-compact.js';
import { readSeries } from '../storage/series-read.js';
import { verifyArchive } from '../storage/verify.js';
import type { Cursor } from '../storage/cursor.js';
import type { Batch } from '../protocol/value.js';
import { randomBatches, rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { HEADER_BYTES, SLOT_BYTES, SLOT_OFFSETS } from '../storage/codec/header.js';
import { naiveState, plain, readAll, readArchive, sorted } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';

const opts = { imageFrequencyBytes: 16 * 1024, flushIntervalMs: 0 };
const fast = { targets: { updates: 600 }, keptBytesRatioMax: Infinity, updatesPerS: Infinity, swapRetryMs: 5 };
const open: Archive[] = [];

afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

/** A writable archive (as a server holds it): `sealed` batches in a rotated file of many small blocks, `after` in `current`. */
async function recorded(sealed: Batch[], after: Batch[]): Promise<{ dir: string; a: Archive }> {
  const dir = await tmpDir('live-compact-');
  const a = await Archive.open(dir, opts);
  open.push(a);
  let i = 0;
  for (const b of sealed) {
    a.writer!.append(b.updates, b.ts);
    if (++i % 3 === 0) await a.writer!.flush();
  }
  await a.writer!.flush();
  await a.writer!.rotate();
  for (const b of after) a.writer!.append(b.updates, b.ts);
  await a.writer!.flush();
  return { dir, a };
}

type Step = { op: 'next'; n: number } | { op: 'columns'; n: number } | { op: 'seek'; ts: number } | { op: 'back'; n: number } | { op: 'state' } | { op: 'end' };

async function apply(c: Cursor, steps: readonly Step[]): Promise<unknown[]> {
  const seen: unknown[] = [];
  for (const s of steps) {
    if (s.op === 'next') for (let i = 0; i < s.n; i++) seen.push(plain(await c.next()));
    else if (s.op === 'columns') for (let i = 0; i < s.n; i++) seen.push((await c.nextColumns())?.batches ?? null);
    else if (s.op === 'seek') await c.seek({ ts: s.ts });
    else if (s.op === 'back') await c.seek({ batches: -s.n });
    else if (s.op === 'end') await c.seek('end');
    else seen.push(sorted(await c.state()));
  }
  return seen;
}

describe('live compaction', () => {
  it('swaps a sealed file in under cursors in every state: each reads on as a cursor born after the swap, and as recorded', async () => {
    const all = randomBatches(2107, 700, { paths: 60 });
    const sealed = all.slice(0, 600);
    const { dir, a } = await recorded(sealed, all.slice(600));
    const f = a.fileList.all().find((x) => x.sealed)!;
    const deltasBefore = a.table(f).deltas.length;
    const mid = (sealed[300] as Batch).ts;
    const plans: Record<string, Step[]> = {
      beginning: [],
      'mid-block': [{ op: 'next', n: 7 }],
      'after columns': [{ op: 'columns', n: 3 }],
      'seek and state': [{ op: 'seek', ts: mid }, { op: 'state' }],
      'seek between batches': [{ op: 'seek', ts: mid + 1 }],
      'step back': [{ op: 'next', n: 250 }, { op: 'back', n: 5 }],
      'file end': [{ op: 'next', n: 600 }],
      'data end': [{ op: 'end' }],
    };
    const live = new Map<string, Cursor>();
    for (const [name, steps] of Object.entries(plans)) {
      const c = a.cursor();
      await apply(c, steps);
      live.set(name, c);
    }
    const filtered = a.cursor({ filter: ['/w*/dev-1/**'] });
    await filtered.next();
    await filtered.next();

    const lc = new LiveCompactor(a, fast);
    const outcomes: unknown[] = [];
    lc.on('settled', (o) => outcomes.push(o));
    await lc.start();
    await lc.whenIdle();
    expect(outcomes).toMatchObject([{ result: 'compacted', name: f.name }]);
    expect(f.gen).toBe(1);
    expect(a.table(f).deltas.length).toBeLessThan(deltasBefore / 4);
    expect((await readdir(dir)).filter((n) => n.endsWith('.compact.tmp'))).toEqual([]);

    // More recorded after the swap: every cursor reads into it.
    const later = randomBatches(99, 20, { startTs: (all[699] as Batch).ts + 10 });
    for (const b of later) a.writer!.append(b.updates, b.ts);
    await a.writer!.flush();
    const everything = plain([...all, ...later]);

    for (const [name, steps] of Object.entries(plans)) {
      const c = live.get(name)!;
      const twin = a.cursor();
      // The end moved since (more was recorded): the twin stands where the end was.
      await apply(twin, name === 'data end' ? [{ op: 'seek', ts: (all[699] as Batch).ts }] : steps);
      const [state, twinState] = [sorted(await c.state()), sorted(await twin.state())];
      expect(state, name).toStrictEqual(twinState);
      const rest = plain(await readAll(c));
      expect(rest, name).toStrictEqual(plain(await readAll(twin)));
      expect(rest, name).toStrictEqual(everything.slice(everything.length - rest.length));
      expect(state, name).toStrictEqual(sorted(naiveState(everything, c.pos === null ? null : (everything[everything.length - rest.length - 1]?.ts ?? null))));
    }
    const restFiltered = plain(await readAll(filtered));
    const wantFiltered = everything
      .map((b) => ({ ts: b.ts, updates: b.updates.filter(([p]) => /^\/w\d\/dev-1\//.test(p)) }))
      .filter((b) => b.updates.length > 0);
    expect(restFiltered).toStrictEqual(wantFiltered.slice(2));

    // Series reads see the new file (caches keyed by generation).
    const id = a.pathIds.get([...a.pathIds.keys()][0]!)!;
    let samples = 0;
    for await (const pieces of readSeries(a, [id], 0, Number.MAX_SAFE_INTEGER)) for (const p of pieces) samples += p.to - p.from;
    const want = everything.reduce((n, b) => n + b.updates.filter(([p]) => p === a.paths[id]).length, 0);
    expect(samples).toBe(want);

    await lc.stop();
    await a.close();
    open.length = 0;
    expect(plain(await readArchive(dir))).toStrictEqual(everything);
    const v = await verifyArchive(dir);
    expect(v.ok, JSON.stringify(v)).toBe(true);
  });

  it('a read in flight holds the swap back; one that does not end in time makes it give up, and the file stays as recorded', async () => {
    const all = randomBatches(77, 300, { paths: 30 });
    const { a } = await recorded(all, []);
    const f = a.fileList.all().find((x) => x.sealed)!;
    const id = 0;
    // A series read paused between two of its yields holds the gate (its file's places).
    const held = readSeries(a, [id], 0, Number.MAX_SAFE_INTEGER, { sidecars: false })[Symbol.asyncIterator]();
    await held.next();
    expect(a.gate.reads).toBe(1);
    const lc = new LiveCompactor(a, { ...fast, gate: { idleWaitMs: 5, drainWaitMs: 5 } });
    const outcomes: Array<{ result: string }> = [];
    lc.on('settled', (o: { result: string }) => outcomes.push(o));
    await lc.start();
    await lc.whenIdle();
    expect(outcomes).toMatchObject([{ result: 'gave up' }]);
    expect(lc.stats.swapRetries).toBeGreaterThanOrEqual(12);
    expect(f.gen).toBe(0);
    await held.return?.(undefined);
    expect(a.gate.reads).toBe(0);
    expect(plain(await readAll(a.cursor()))).toStrictEqual(plain(all));

    // With more patience the swap waits for the read to end, and the read sees one generation throughout.
    const all2 = randomBatches(78, 300, { paths: 30 });
    const { a: b } = await recorded(all2, []);
    const g = b.fileList.all().find((x) => x.sealed)!;
    const c = b.cursor();
    const pending = (async () => {
      const out = [];
      const it = readSeries(b, [0], 0, Number.MAX_SAFE_INTEGER, { sidecars: false });
      for await (const pieces of it) {
        out.push(g.gen);
        await new Promise((r) => setTimeout(r, 20));
        for (const p of pieces) out.push(p.to - p.from);
      }
      return out;
    })();
    const lc2 = new LiveCompactor(b, { ...fast, gate: { idleWaitMs: 2_000, drainWaitMs: 200 } });
    await lc2.start();
    const gens = await pending;
    await lc2.whenIdle();
    expect(g.gen).toBe(1);
    expect(gens.filter((_, i) => i % 2 === 0).every((x) => x === 0)).toBe(true);
    expect(plain(await readAll(c))).toStrictEqual(plain(all2));
    await lc2.stop();
  });

  it('leaves the open file, and files whose put has started, as recorded', async () => {
    const all = randomBatches(5, 200, { paths: 20 });
    const { a } = await recorded(all.slice(0, 100), all.slice(100));
    const f = a.fileList.all().find((x) => x.sealed)!;
    a.catalog.setPut({ name: f.name, status: 'pending', attempts: 0, error: null, updatedMs: Date.now() });
    const lc = new LiveCompactor(a, fast);
    const outcomes: Array<{ result: string; why?: string }> = [];
    lc.on('settled', (o: { result: string; why?: string }) => outcomes.push(o));
    await lc.start();
    // Not queued at start; a rotation's enqueue says why it is left.
    expect(lc.pending(f.seq)).toBe(false);
    lc.enqueue(f.seq);
    lc.enqueue((a.fileList.last() as { seq: number }).seq);
    await lc.whenIdle();
    expect(outcomes).toMatchObject([
      { result: 'skipped', why: 'shipped by the put hook' },
      { result: 'skipped', why: 'open file' },
    ]);
    expect(f.gen).toBe(0);
    await lc.stop();
  });
});

describe('live compaction: damage in the compaction before the swap', () => {
  it('is caught when it is read back, in each region of the file (header, commit slot, a frame, a cut; seeded): the file stays as recorded', async () => {
    const seed = scheduleSeed('LIVE_COMPACT_DAMAGE_SEED', 'live-compact damage');
    const r = rng(seed);
    const all = randomBatches(seed % 1000, 240, { paths: 30 });
    for (const region of ['header', 'slot', 'frame', 'cut'] as const) {
      const { dir, a } = await recorded(all, []);
      const f = a.fileList.all().find((x) => x.sealed)!;
      let frames = 0;
      let hit = '';
      const lc = new LiveCompactor(a, {
        ...fast,
        onWritten: async (tmp) => {
          const bytes = new Uint8Array(await readFile(tmp));
          // The new rows are the compaction's; the frames lie from the header to the end.
          let at: number;
          // Every header byte: magic, version, ids (CRC32C), reserved bytes, both slots and their padding.
          if (region === 'header') at = Math.floor(r() * SLOT_OFFSETS[0]);
          else if (region === 'slot') at = SLOT_OFFSETS[0] + Math.floor(r() * 2 * SLOT_BYTES);
          else if (region === 'cut') {
            await truncate(tmp, HEADER_BYTES + Math.floor(r() * (bytes.length - HEADER_BYTES)));
            hit = 'cut';
            return;
          } else at = HEADER_BYTES + Math.floor(r() * (bytes.length - HEADER_BYTES));
          bytes[at] = (bytes[at] as number) ^ (1 << Math.floor(r() * 8));
          frames++;
          hit = `${region} byte ${at}`;
          await writeFile(tmp, bytes);
        },
      });
      const outcomes: Array<{ result: string; why?: string }> = [];
      lc.on('settled', (o: { result: string; why?: string }) => outcomes.push(o));
      await lc.start();
      await lc.whenIdle();
      expect(outcomes, `seed ${seed}, ${hit}`).toMatchObject([{ result: 'failed', why: expect.stringMatching(/^TPD_CORRUPT_(BLOCK|HEADER)|^TPD_NOT_AN_ARCHIVE_FILE|^TPD_CATALOG/) }]);
      expect(f.gen).toBe(0);
      expect((await readdir(dir)).filter((n) => n.endsWith('.compact.tmp'))).toEqual([]);
      expect(plain(await readAll(a.cursor()))).toStrictEqual(plain(all));
      await lc.stop();
      expect(frames + (region === 'cut' ? 1 : 0)).toBe(1);
    }
  });
});

describe('live compaction and cold storage', () => {
  it('ships the compacted file (the put waits for the compaction), evicts it, and fetches it back whole', async () => {
    const { ColdStorage } = await import('../storage/cold.js');
    const { join } = await import('node:path');
    const hooks = join(process.cwd(), 'test/fixtures/hooks');
    const base = await tmpDir('live-compact-cold-');
    const cold = join(base, 'cold');
    await mkdir(cold);
    // Counters: a compaction saves enough on them to be kept under the default ratio rule.
    const all: Batch[] = [];
    for (let b = 0; b < 400; b++) all.push({ ts: 1_700_000_000_000_000 + b * 15_000_000, updates: Array.from({ length: 40 }, (_, i): [string, number] => [`/c/m${i}`, b * (i + 1)]) });
    const dir = join(base, 'archive');
    const a = await Archive.open(dir, opts);
    open.push(a);
    const lc = new LiveCompactor(a, { targets: { updates: 4_000 }, updatesPerS: Infinity, swapRetryMs: 5 });
    await lc.start();
    const c = await ColdStorage.start(a, {
      hooks: { put: { cmd: join(hooks, 'put-copy.sh'), args: [cold] }, get: { cmd: join(hooks, 'get-copy.sh'), args: [cold] } },
      retention: { maxAgeMs: 0, maxBytes: 1 }, checkIntervalMs: 0, listIntervalMs: 0,
    });
    const shipped = new Promise<void>((done) => c.on('event', (e: { type: string; ok?: boolean }) => e.type === 'put' && e.ok === true && done()));
    for (const [i, b] of all.entries()) {
      a.writer!.append(b.updates, b.ts);
      if (i % 3 === 2) await a.writer!.flush();
    }
    await a.writer!.flush();
    await a.writer!.rotate();
    await shipped;
    const f = a.fileList.all().find((x) => x.sealed)!;
    expect(lc.stats.compacted).toBe(1);
    expect(f.gen).toBe(1);
    // The cold copy is the compacted file, byte for byte: the catalog's rows describe it.
    expect(Buffer.compare(await readFile(join(cold, f.name)), await readFile(join(dir, f.name)))).toBe(0);
    await c.check();
    expect(f.location).toBe('remote');
    const cur = a.cursor();
    expect(plain(await readAll(cur))).toStrictEqual(plain(all));
    expect(f.location).toBe('local');
    await c.stop();
    await lc.stop();
    await a.close();
    open.length = 0;
    expect(plain(await readArchive(dir))).toStrictEqual(plain(all));
    const v = await verifyArchive(dir);
    expect(v.ok, JSON.stringify(v.problems)).toBe(true);
  });
});
