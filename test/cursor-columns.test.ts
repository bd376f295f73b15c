/**
 * Cursor.nextColumns (storage/column-batches.ts) against Cursor.next on seeded hostile
 * archives: every batch and update, in order, with the same values bit for bit (NaN
 * payloads quiet and signalling, -0, strings, nulls, bigints, bytes, kinds changing within
 * a path), filtered and selective cursors, positions after seeks, several files, a rotation
 * while a cursor reads, and damaged or cut blocks, where both must fail with the same code
 * and details and leave the position before the block. Seeded; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { isDeepStrictEqual } from 'node:util';
import { mkdir, truncate } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Value } from '../protocol/value.js';
import { isTapedeckError } from '../protocol/errors.js';
import { Archive } from '../storage/archive.js';
import type { Cursor } from '../storage/cursor.js';
import { BlockType } from '../storage/codec/frame.js';
import type { ColumnBatchesBuilder } from '../storage/column-batches.js';
import { ColdStorage, type ColdEvent } from '../storage/cold.js';
import { xorByte } from './helpers/damage.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { randomValue, rng } from './helpers/workload.js';

const T0 = 1_763_000_000_000_000;
const S = 1_000_000;

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
function fromBits(b: bigint): number {
  u64[0] = b;
  return f64[0] as number;
}
function bitsOf(v: number): bigint {
  f64[0] = v;
  return u64[0] as bigint;
}

/** NaNs of several shapes: quiet and signalling, both signs, payloads low and high; -0, ±Inf. */
const ODD_BITS = [0x7ff8000000000001n, 0x7ff0000000000002n, 0xfff8000000001234n, 0x7fffffffffffffffn, 0xfff0000000000001n, 0x7ff4000000000000n, 0x8000000000000000n, 0x7ff0000000000000n];
const HOSTILE: Value[] = [0, -0, NaN, Infinity, -Infinity, 1.5, 2 ** 53, 1e-300, 'a', '', null, 7n, 2n ** 70n, [1, 2], { k: [0] }, Uint8Array.of(1, 2), true, false];

/** Records a seeded hostile workload: ragged batches of mixed kinds, polls of numbers with odd bits, empty batches, commits at random. */
async function record(dir: string, seed: number, opts: { rotateSizeBytes?: number } = {}): Promise<Archive> {
  const r = rng(seed);
  const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 24 * 1024, rotateSizeBytes: opts.rotateSizeBytes ?? 32 * 1024 });
  await writeSome(a, r, 0, 700);
  await a.close();
  return Archive.open(dir, { readonly: true });
}

/** Batches [from, to) of the workload into an open writable archive. */
async function writeSome(a: Archive, r: () => number, from: number, to: number): Promise<void> {
  const w = a.writer!;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const ragged = Array.from({ length: 40 }, (_, i) => `/r/k${i}`);
  const polled = Array.from({ length: 64 }, (_, i) => `/p/k${i}`);
  const pollIds = Uint32Array.from(polled, (p) => w.pathId(p));
  let ts = T0 + from * 2 * S;
  for (let b = from; b < to; b++) {
    ts += r() < 0.1 ? 0 : Math.ceil(r() * 3) * S;
    const phase = Math.floor(b / 50) % 4;
    if (phase === 0 || phase === 3) {
      // Ragged: a random share of the paths, numbers of every shape and any other kind.
      const updates = ragged.filter(() => r() < 0.4).map((p, i): [string, Value] => {
        const x = r();
        const v: Value = x < 0.3 ? Math.round(r() * 1000) / 10 : x < 0.5 ? pick(HOSTILE) : x < 0.6 ? fromBits(pick(ODD_BITS)) : x < 0.7 ? (r() - 0.5) * 1e6 : i % 3 === 0 ? Math.round(r() * 50) : randomValue(r);
        return [p, v];
      });
      w.append(updates, ts);
    } else if (phase === 1) {
      // Polls of numbers (uniform blocks) with odd bit patterns now and then, as columns (bits kept).
      const live = b % 7 === 0 ? pollIds.subarray(0, 40) : pollIds;
      const values = Float64Array.from(live, (_, i) => (r() < 0.05 ? fromBits(pick(ODD_BITS)) : i % 2 === 0 ? Math.round(r() * 100) : r() * 1e3));
      w.appendColumns(live, values, ts);
    } else {
      // Polls of mixed values as columns (strings, null, numbers with odd bits in one column), and empty batches.
      if (r() < 0.15) {
        w.append([], ts);
        continue;
      }
      const live = pollIds.subarray(0, 16);
      const values: Value[] = Array.from(live, () => (r() < 0.3 ? fromBits(pick(ODD_BITS)) : r() < 0.5 ? pick(HOSTILE) : Math.round(r() * 9)));
      w.appendColumns(live, values, ts);
    }
    if (r() < 0.04) await w.flush();
  }
  await w.flush();
}

type Seen = { ts: number; updates: Array<[string, Value]> };

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

/** Each batch next() gives, up to `max`. */
async function viaNext(c: Cursor, max = Infinity): Promise<Seen[]> {
  const out: Seen[] = [];
  for (let i = 0; i < max; i++) {
    const b = await c.next();
    if (!b) break;
    out.push({ ts: b.ts, updates: b.updates.map(([p, v]) => [p, v]) });
  }
  return out;
}

/** One nextColumns view as batches of [path, value] (values as next() gives them). */
function fromView(a: Archive, v: NonNullable<Awaited<ReturnType<Cursor['nextColumns']>>>): Seen[] {
  const out: Seen[] = [];
  let o = 0;
  while (o < v.otherCount && (v.otherAt[o] as number) < (v.starts[0] as number)) o++;
  for (let k = 0; k < v.batches; k++) {
    const updates: Array<[string, Value]> = [];
    for (let u = v.starts[k] as number; u < (v.starts[k + 1] as number); u++) {
      let value: Value = v.nums[u] as number;
      if (o < v.otherCount && v.otherAt[o] === u) value = v.others[o++] as Value;
      updates.push([a.paths[v.ids[u] as number] as string, value]);
    }
    out.push({ ts: v.ts[k] as number, updates });
  }
  return out;
}

/** The first difference between two readings (values compared bit for bit), or undefined. */
function firstDifference(want: Seen[], got: Seen[]): string | undefined {
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    const w = want[i];
    const g = got[i];
    if (!w || !g) return `batch ${i}: ${w ? 'missing' : 'extra'}`;
    if (w.ts !== g.ts) return `batch ${i}: ts ${g.ts}, want ${w.ts}`;
    if (w.updates.length !== g.updates.length) return `batch ${i}: ${g.updates.length} updates, want ${w.updates.length}`;
    for (let j = 0; j < w.updates.length; j++) {
      const [wp, wv] = w.updates[j]!;
      const [gp, gv] = g.updates[j]!;
      if (wp !== gp) return `batch ${i} update ${j}: path ${gp}, want ${wp}`;
      if (typeof wv === 'number') {
        if (typeof gv !== 'number' || bitsOf(wv) !== bitsOf(gv)) return `batch ${i} update ${j} (${wp}): ${typeof gv === 'number' ? bitsOf(gv).toString(16) : String(gv)}, want bits ${bitsOf(wv).toString(16)}`;
      } else if (!isDeepStrictEqual(wv, gv)) {
        return `batch ${i} update ${j} (${wp}): ${String(gv)}, want ${String(wv)}`;
      }
    }
  }
  return undefined;
}

/** Reads with nextColumns to the end, checking the position after each block against a next() cursor walked as far. */
async function readBoth(a: Archive, c: Cursor, ref: Cursor): Promise<{ want: Seen[]; got: Seen[]; posProblem?: string }> {
  const want: Seen[] = [];
  const got: Seen[] = [];
  for (let v = await c.nextColumns(); v; v = await c.nextColumns()) {
    expect(v.batches).toBeGreaterThan(0);
    got.push(...fromView(a, v));
    want.push(...(await viaNext(ref, v.batches)));
    if (c.pos !== ref.pos) return { want, got, posProblem: `position ${c.pos}, want ${ref.pos}` };
  }
  want.push(...(await viaNext(ref)));
  return { want, got };
}

/** An archive with cold storage (the test hooks copying into a directory), its first files shipped and evicted. */
async function evicted(get: 'get-copy.sh' | 'fail.sh', seed: number): Promise<{ a: Archive; c: ColdStorage }> {
  const base = await tmpDir('tapedeck-columns-cold-');
  const cold = join(base, 'cold');
  await mkdir(cold);
  const fix = resolve('test/fixtures/hooks');
  const hook = (script: string): { cmd: string; args: string[] } => ({ cmd: join(fix, script), args: script === 'fail.sh' ? [] : [cold] });
  const a = await Archive.open(join(base, 'archive'), { flushIntervalMs: 0, imageFrequencyBytes: 24 * 1024 });
  const c = await ColdStorage.start(a, {
    checkIntervalMs: 0,
    listIntervalMs: 0,
    hooks: { put: hook('put-copy.sh'), get: hook(get), list: hook('list-dir.sh') },
    policy: { put: { attempts: 1, backoffInitialMs: 10, backoffMaxMs: 20, timeoutMs: 10_000 }, get: { attempts: 1, backoffInitialMs: 10, backoffMaxMs: 20, timeoutMs: 10_000 } },
    retention: { maxAgeMs: 0, maxBytes: 1 },
    fetchedKeepMs: 60_000,
  });
  const r = rng(seed);
  for (const [from, to] of [[0, 150], [150, 300]] as const) {
    await writeSome(a, r, from, to);
    const shipped = new Promise<void>((done) => {
      const on = (e: ColdEvent): void => {
        if (e.type !== 'put') return;
        c.off('event', on);
        done();
      };
      c.on('event', on);
    });
    await a.writer!.rotate();
    await shipped;
  }
  await writeSome(a, r, 300, 350);
  await c.check();
  expect(a.files.map((f) => f.location)).toEqual(['remote', 'remote', 'local']);
  return { a, c };
}

describe('Cursor.nextColumns', () => {
  it('fetches evicted files back as next() does (telling onFetchWait), and fails as next() fails when the fetch fails', async () => {
    const seed = scheduleSeed('CURSOR_COLUMNS_COLD_SEED', 'nextColumns over cold files');
    for (const get of ['get-copy.sh', 'fail.sh'] as const) {
      const { a, c } = await evicted(get, seed);
      try {
        const waits: string[] = [];
        const cur = a.cursor({ onFetchWait: (e) => waits.push(`${e.name} ${e.phase}`) });
        const got: Seen[] = [];
        let error = 'no error';
        try {
          for (let v = await cur.nextColumns(); v; v = await cur.nextColumns()) got.push(...fromView(a, v));
        } catch (err) {
          if (!isTapedeckError(err)) throw err;
          error = `${err.code} ${err.message}`;
        }
        if (get === 'fail.sh') {
          const want = await viaNext(a.cursor()).then(
            () => 'no error',
            (err: unknown) => (isTapedeckError(err) ? `${err.code} ${err.message}` : String(err)),
          );
          expect(error).toBe(want);
          expect(error).toMatch(/^TPD_FILE_UNAVAILABLE /);
          expect(waits).toEqual([`${a.files[0]!.name} start`, `${a.files[0]!.name} failed`]);
        } else {
          expect(error).toBe('no error');
          expect(waits.filter((w) => w.endsWith(' done'))).toHaveLength(2);
          const want = await viaNext(a.cursor());
          expect(want).toHaveLength(350);
          expect(firstDifference(want, got), `seed ${seed}`).toBeUndefined();
        }
      } finally {
        await c.stop();
        await a.close();
      }
    }
  });

  it('gives every batch and value next() gives, bit for bit, from any position and through any filter (seeded)', async () => {
    const seed = scheduleSeed('CURSOR_COLUMNS_SEED', 'nextColumns against next');
    const r = rng(seed);
    const a = await record(await tmpDir(), seed);
    try {
      expect(a.files.length).toBeGreaterThan(2);
      const ts: number[] = [];
      for (let c = a.cursor(), b = await c.next(); b; b = await c.next()) ts.push(b.ts);
      const starts: Array<'beginning' | { ts: number }> = ['beginning', { ts: T0 - S }, { ts: ts.at(-1)! }, { ts: ts.at(-1)! + S }];
      for (let i = 0; i < 6; i++) starts.push({ ts: ts[Math.floor(r() * ts.length)]! + (r() < 0.5 ? 0 : -1) });
      const cursors: Array<{ filter?: string[]; selective?: boolean }> = [{}, { filter: ['/p/**'] }, { filter: ['/r/k1*', '/p/k3'] }, { filter: ['/r/k1*', '/p/k3'], selective: true }, { filter: ['/nothing/**'] }];
      let numbers = 0;
      let others = 0;
      let oddNaNs = 0;
      for (const opts of cursors) {
        for (const at of starts) {
          const where = `seed ${seed} ${JSON.stringify(opts)} from ${JSON.stringify(at)}`;
          const c = a.cursor(opts);
          const ref = a.cursor(opts);
          await c.seek(at);
          await ref.seek(at);
          const { want, got, posProblem } = await readBoth(a, c, ref);
          expect(posProblem, where).toBeUndefined();
          expect(firstDifference(want, got), where).toBeUndefined();
          if (opts.filter === undefined && at === 'beginning') {
            expect(want.length, where).toBe(ts.length);
            for (const b of want) {
              for (const [, v] of b.updates) {
                if (typeof v !== 'number') others++;
                else if (Number.isNaN(v) && bitsOf(v) !== bitsOf(NaN)) oddNaNs++;
                else numbers++;
              }
            }
          }
        }
      }
      // The workload must have held what the test is about.
      expect(numbers).toBeGreaterThan(1000);
      expect(others).toBeGreaterThan(100);
      expect(oddNaNs).toBeGreaterThan(10);
    } finally {
      await a.close();
    }
  });

  it('reads blocks of numbers only through the codec typed decode (short columns) and the column reader (polls) alike, bit for bit, from any position (seeded)', async () => {
    const seed = scheduleSeed('CURSOR_COLUMNS_INTO_SEED', 'nextColumns typed decode');
    const r = rng(seed);
    const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
    try {
      const w = a.writer!;
      // Many paths, a few a batch (columns of one or two values: the typed decode), then
      // polls of a few paths (long columns: the column reader), block after block.
      const many = Uint32Array.from({ length: 3000 }, (_, i) => w.pathId(`/m/k${i}`));
      const few = many.subarray(0, 24);
      let ts = T0;
      for (let block = 0; block < 24; block++) {
        const short = block % 3 !== 2;
        for (let b = 0; b < 40; b++) {
          ts += r() < 0.1 ? 0 : Math.ceil(r() * 3) * S;
          // Polls repeat one shape (the column reader's cached gather), short blocks have empty batches.
          if (short && r() < 0.05) {
            w.append([], ts);
            continue;
          }
          const n = short ? 1 + Math.floor(r() * 60) : few.length;
          const ids = short ? Uint32Array.from({ length: n }, () => many[Math.floor(r() * many.length)] as number) : few;
          const unique = Uint32Array.from(new Set(ids));
          // Decimals (DECIMAL kinds) or, in some blocks, any bits (XOR: NaN payloads, -0, ±Inf).
          const odd = block % 4 === 1;
          const values = Float64Array.from(unique, () => (odd && r() < 0.2 ? fromBits(pick(r, ODD_BITS)) : Math.round((r() - 0.5) * 1e5) / 100));
          // Some polls hold strings (the column reader's side channel, which the next block must not show).
          if (!short && block % 6 === 5) w.appendColumns(unique, Array.from(values, (v, i): Value => (i % 5 === 0 ? `s${v}` : v)), ts);
          else w.appendColumns(unique, values, ts);
        }
        await w.flush();
      }
      const all = await viaNext(a.cursor());
      const starts: Array<'beginning' | { ts: number }> = ['beginning'];
      for (let i = 0; i < 8; i++) starts.push({ ts: all[Math.floor(r() * all.length)]!.ts + (r() < 0.5 ? 0 : -1) });
      let intoBlocks = 0;
      for (const at of starts) {
        const c = a.cursor();
        const ref = a.cursor();
        await c.seek(at);
        await ref.seek(at);
        const { want, got, posProblem } = await readBoth(a, c, ref);
        const where = `seed ${seed} from ${JSON.stringify(at)}`;
        expect(posProblem, where).toBeUndefined();
        expect(firstDifference(want, got), where).toBeUndefined();
        intoBlocks += (c as unknown as { columns?: ColumnBatchesBuilder }).columns?.intoBlocks ?? 0;
      }
      // Both paths were taken: the typed decode for short columns, the reader for the polls.
      expect(intoBlocks).toBeGreaterThan(10);
      expect(all.reduce((n, b) => n + b.updates.filter(([, v]) => Number.isNaN(v) && bitsOf(v as number) !== bitsOf(NaN)).length, 0)).toBeGreaterThan(5);
      const c = a.cursor();
      let blocks = 0;
      while (await c.nextColumns()) blocks++;
      expect(blocks - (c as unknown as { columns: ColumnBatchesBuilder }).columns.intoBlocks).toBeGreaterThan(4);
    } finally {
      await a.close();
    }
  });

  it('keeps every value of the side channel when a block holds many that are not numbers (seeded)', async () => {
    const seed = scheduleSeed('CURSOR_COLUMNS_OTHERS_SEED', 'nextColumns side channel');
    const r = rng(seed);
    const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
    try {
      // Blocks of thousands of strings, nulls and bigints among numbers: the side channel grows within a block.
      const paths = Array.from({ length: 300 }, (_, i) => `/s/k${i}`);
      for (let b = 0; b < 40; b++) {
        a.writer!.append(
          paths.map((p): [string, Value] => {
            if (r() >= 0.7) return [p, Math.round(r() * 100)];
            const v = pick<Value>(r, ['x', '', null, 5n, true]);
            return [p, typeof v === 'string' && r() < 0.5 ? `${v}${b}` : v];
          }),
          T0 + b * S,
        );
        if (b % 20 === 19) await a.writer!.flush();
      }
      await a.writer!.flush();
      const want = await viaNext(a.cursor());
      const c = a.cursor();
      const got: Seen[] = [];
      let mostOthers = 0;
      for (let v = await c.nextColumns(); v; v = await c.nextColumns()) {
        mostOthers = Math.max(mostOthers, v.otherCount);
        got.push(...fromView(a, v));
      }
      expect(mostOthers).toBeGreaterThan(1000);
      expect(firstDifference(want, got), `seed ${seed}`).toBeUndefined();
    } finally {
      await a.close();
    }
  });

  it('mixed with next() on one cursor, the two go on from the same position', async () => {
    const seed = scheduleSeed('CURSOR_COLUMNS_MIX_SEED', 'nextColumns mixed with next');
    const r = rng(seed);
    const a = await record(await tmpDir(), seed);
    try {
      const want = await viaNext(a.cursor());
      const c = a.cursor();
      const got: Seen[] = [];
      while (true) {
        if (r() < 0.5) {
          const v = await c.nextColumns();
          if (!v) break;
          got.push(...fromView(a, v));
        } else {
          const b = await viaNext(c, 1 + Math.floor(r() * 40));
          if (b.length === 0) break;
          got.push(...b);
        }
      }
      expect(firstDifference(want, got), `seed ${seed}`).toBeUndefined();
    } finally {
      await a.close();
    }
  });

  it('reads on through a rotation and commits made while it reads (seeded)', async () => {
    const seed = scheduleSeed('CURSOR_COLUMNS_ROTATION_SEED', 'nextColumns across a rotation');
    const r = rng(seed);
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 24 * 1024, rotateSizeBytes: 0 });
    try {
      await writeSome(a, r, 0, 120);
      const c = a.cursor();
      const got: Seen[] = [];
      const first = await c.nextColumns();
      expect(first).not.toBeNull();
      got.push(...fromView(a, first!));
      // Rotated while the cursor stands inside `current`, then more written into the new file.
      await a.writer!.rotate();
      await writeSome(a, r, 120, 260);
      for (let v = await c.nextColumns(); v; v = await c.nextColumns()) got.push(...fromView(a, v));
      expect(a.files.length).toBeGreaterThan(1);
      const want = await viaNext(a.cursor());
      expect(want.length).toBe(260);
      expect(firstDifference(want, got), `seed ${seed}`).toBeUndefined();
      // At the end of committed data it says so, and goes on once more is committed.
      expect(await c.nextColumns()).toBeNull();
      await writeSome(a, r, 260, 270);
      const more: Seen[] = [];
      for (let v = await c.nextColumns(); v; v = await c.nextColumns()) more.push(...fromView(a, v));
      expect(more.length).toBe(10);
    } finally {
      await a.close();
    }
  });

  it('fails on a damaged block and on a file cut short as next() fails, with the same details, and stays before them (seeded)', async () => {
    const seed = scheduleSeed('CURSOR_COLUMNS_DAMAGE_SEED', 'nextColumns on damage');
    const r = rng(seed);
    const dir = await tmpDir();
    const a0 = await record(dir, seed, { rotateSizeBytes: 12 * 1024 });
    const sealed = a0.files.filter((f) => f.sealed);
    expect(sealed.length).toBeGreaterThan(2);
    const hurt = sealed[Math.floor(r() * (sealed.length - 1))]!;
    const rows = a0.table(hurt).rows.filter((row) => row.type === BlockType.DELTA);
    const row = rows[Math.floor(r() * rows.length)]!;
    const cut = sealed.at(-1)!;
    const cutRow = a0.table(cut).rows.filter((x) => x.type === BlockType.DELTA).at(-1)!;
    await a0.close();
    const at = row.offset + 48 + Math.floor(r() * (row.frameBytes - 48));
    console.log(`damaging ${hurt.name} at byte ${at} (block at ${row.offset})`);
    await xorByte(join(dir, hurt.name), at, 1 + Math.floor(r() * 255));
    const a = await Archive.open(dir, { readonly: true });
    try {
      await truncate(join(dir, cut.name), cutRow.offset + Math.floor(cutRow.frameBytes / 2));
      const failure = async (read: () => Promise<unknown>): Promise<string> => {
        try {
          await read();
          return 'no error';
        } catch (err) {
          if (!isTapedeckError(err)) throw err;
          return `${err.code} ${JSON.stringify(err.details)}`;
        }
      };
      for (const start of [{ ts: T0 - S }, { ts: row.firstTs - 1 }, { ts: row.lastTs }, { ts: cutRow.firstTs - 1 }]) {
        const c = a.cursor();
        const ref = a.cursor();
        // A seek into the damaged block fails (it reads the block): alike for both.
        const seekError = await failure(() => c.seek(start));
        expect(await failure(() => ref.seek(start))).toBe(seekError);
        if (seekError !== 'no error') continue;
        const got: Seen[] = [];
        let gotError = 'no error';
        while (true) {
          const before = c.pos;
          let v;
          try {
            v = await c.nextColumns();
          } catch (err) {
            gotError = await failure(() => Promise.reject(err));
            // The position stays before the block: the same error again.
            expect(c.pos).toBe(before);
            expect(await failure(() => c.nextColumns())).toBe(gotError);
            break;
          }
          if (!v) break;
          got.push(...fromView(a, v));
        }
        const want: Seen[] = [];
        const wantError = await failure(async () => {
          for (let b = await ref.next(); b; b = await ref.next()) want.push({ ts: b.ts, updates: b.updates.map(([p, v]) => [p, v]) });
        });
        const where = `seed ${seed} from ${start.ts}`;
        expect(gotError, where).toBe(wantError);
        // nextColumns stops at the block's start; next() may have given the batches of the damaged block's predecessors only.
        expect(firstDifference(want, got), where).toBeUndefined();
      }
    } finally {
      await a.close();
    }
  });
});
