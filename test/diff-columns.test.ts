/**
 * The diff pass reads blocks by columns (storage/column-block.ts, server/diff-pass.ts). Its
 * answer must be the one a naive replay of the recorded batches gives, and the one the
 * cursor's per-update pass (what /api/v1/diff did before) gives, over hostile values,
 * uniform polls and ragged batches, several files, ranges starting and ending inside
 * blocks; on a damaged block it must fail as the cursor fails. The column decoder itself is
 * checked against the codec's decoder on random and on damaged payloads. Seeded; the seed
 * is printed.
 */
import { describe, expect, it } from 'vitest';
import { isDeepStrictEqual } from 'node:util';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { Batch, Value } from '../protocol/value.js';
import { valueToJson } from '../protocol/value-json.js';
import { formatTs } from '../protocol/time.js';
import { isTapedeckError } from '../protocol/errors.js';
import { compileSpec } from '../protocol/glob.js';
import { DiffFold, type DiffAnswer, type PathDiff } from '../server/diff.js';
import { diffRange } from '../server/routes/diff.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { Archive } from '../storage/archive.js';
import { BlockType } from '../storage/codec/frame.js';
import { decodeBatches, encodeBatches } from '../storage/codec/payload.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import { ColumnBlockReader, ColumnPlace } from '../storage/column-block.js';
import { xorByte } from './helpers/damage.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { flattenBatches, randomValue, rng } from './helpers/workload.js';

const T0 = 1_763_000_000_000_000;
const S = 1_000_000;

/** Values that trip shortcuts: ±0, NaN, ±Inf, big ints, strings, null, nested, bytes, type changes. */
const HOSTILE: Value[] = [0, -0, NaN, Infinity, -Infinity, 1, 1.5, -2, 2 ** 53, 1e-300, 0.1 + 0.2, 'a', 'b', '', null, 7n, 2n ** 70n, [1, 2], { k: [0] }, { k: [0], j: 1 }, Uint8Array.of(1, 2), true, false];

/**
 * A day in miniature: ragged batches (a random share of the paths each, many batches a
 * block: PACKED columns, lists that differ), uniform polls (every path each batch, in one
 * order: uniform blocks), paths appearing late and going to null, a hostile tail.
 */
function workload(seed: number): Batch[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const level = new Map<string, number>();
  const kindOf = (p: string): number => Number(p.split('/')[2]?.slice(1)) % 4;
  const next = (p: string): Value => {
    const x = r();
    if (x < 0.3 && level.has(p)) return level.get(p)!; // a repeat: an update, no change
    const kind = kindOf(p);
    let v: Value;
    if (kind === 0) v = (level.get(p) ?? Math.round(r() * 1000)) + Math.round((r() - 0.5) * 6); // integers: PACKED / DECIMAL_K
    else if (kind === 1) v = Math.round(r() * 10000) / 10; // decimals
    else if (kind === 2) v = (r() - 0.5) * 1e6; // doubles: XOR / FLOAT64
    else v = x < 0.5 ? pick(HOSTILE) : randomValue(r);
    if (typeof v === 'number') level.set(p, v);
    return v;
  };
  const batches: Batch[] = [];
  let ts = T0;
  const step = (): number => (ts += r() < 0.1 ? 0 : Math.ceil(r() * 3) * S); // equal times too (recorded 1 µs apart)
  const ragged = Array.from({ length: 60 }, (_, i) => `/r/k${i}`);
  for (let b = 0; b < 300; b++) {
    const updates = ragged.filter(() => r() < 0.4).map((p) => [p, next(p)] as [string, Value]);
    batches.push({ ts: step(), updates });
  }
  const polled = Array.from({ length: 200 }, (_, i) => `/p/k${i}`);
  for (let b = 0; b < 120; b++) {
    // Every 40th poll, 20 paths more: they appear mid-archive.
    const live = polled.slice(0, 140 + Math.floor(b / 40) * 20);
    batches.push({ ts: step(), updates: live.map((p) => [p, next(p)] as [string, Value]) });
  }
  for (let b = 0; b < 150; b++) {
    const updates: Batch['updates'] = [];
    for (const p of [...ragged.slice(0, 20), ...polled.slice(0, 20)]) {
      const x = r();
      if (x < 0.5) continue;
      updates.push([p, x < 0.6 ? null : x < 0.8 ? pick(HOSTILE) : next(p)]);
    }
    batches.push({ ts: step(), updates });
  }
  return batches;
}

/** A value as the archive gives it back: a bigint within ±(2^53 - 1) is a number (docs/values.md). */
function canonical(v: Value): Value {
  if (typeof v === 'bigint') return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canonical(x)]));
  return v;
}

/** Records the batches (their `ts` set to the time recorded, their values as read back) into small files; opened read-only. */
async function record(batches: Batch[]): Promise<Archive> {
  const dir = await tmpDir('tapedeck-diffcol-');
  // Small files and images: the pass crosses files, and the state at start finds images.
  const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 24 * 1024, rotateSizeBytes: 32 * 1024 });
  for (const [i, b] of batches.entries()) {
    // A time equal to the last is recorded 1 µs later (times only increase): keep the time recorded.
    b.ts = a.writer!.append(b.updates, b.ts);
    b.updates = b.updates.map(([p, v]) => [p, canonical(v)]);
    // Commits now and then: a file rotates at a commit past its size.
    if (i % 25 === 24) await a.writer!.flush();
  }
  await a.writer!.flush();
  await a.close();
  return Archive.open(dir, { readonly: true });
}

const same = (x: Value | undefined, y: Value | undefined): boolean => x !== undefined && y !== undefined && isDeepStrictEqual(valueToJson(x), valueToJson(y));
const none = (v: Value | undefined): boolean => v === undefined || v === null;

/** The answer by replaying the batches themselves: equality on the JSON form, an independent route to the rule. */
function naive(batches: Batch[], globs: string[], startUs: number, endUs: number, listedMax: number): DiffAnswer {
  const match = compileSpec(globs);
  const before = new Map<string, Value>();
  const ups = new Map<string, Array<[number, Value]>>();
  for (const b of batches) {
    for (const [p, v] of b.updates) {
      if (!match(p)) continue;
      if (b.ts <= startUs) before.set(p, v);
      else if (b.ts <= endUs) {
        if (!ups.has(p)) ups.set(p, []);
        ups.get(p)!.push([b.ts, v]);
      }
    }
  }
  const paths: PathDiff[] = [];
  const appeared: string[] = [];
  const disappeared: string[] = [];
  let unchanged = 0;
  for (const p of [...new Set([...before.keys(), ...ups.keys()])].sort()) {
    const start = before.get(p);
    let held = start;
    let changes = 0;
    let first = 0;
    let last = 0;
    let min: number | undefined;
    let max: number | undefined;
    const seeNumber = (v: Value | undefined): void => {
      if (typeof v !== 'number' || Number.isNaN(v)) return;
      // min as Math.min: -0 below 0 (0 then -0 gives -0); max keeps the first of equal bounds.
      if (min === undefined || v < min || (Object.is(v, -0) && min === 0)) min = v;
      if (max === undefined || v > max) max = v;
    };
    seeNumber(start);
    const list = ups.get(p) ?? [];
    for (const [ts, v] of list) {
      seeNumber(v);
      if (same(held, v)) continue;
      held = v;
      if (changes++ === 0) first = ts;
      last = ts;
    }
    if (changes === 0) {
      if (start !== undefined) unchanged++;
      continue;
    }
    const d: PathDiff = { path: p, changes, updates: list.length, firstTs: first, firstTime: formatTs(first), lastTs: last, lastTime: formatTs(last) };
    if (start !== undefined) d.start = valueToJson(start);
    if (held !== undefined) d.end = valueToJson(held);
    if (min !== undefined) {
      d.min = valueToJson(min);
      d.max = valueToJson(max!);
    }
    paths.push(d);
    if (none(start) && !none(held)) appeared.push(p);
    if (!none(start) && none(held)) disappeared.push(p);
  }
  return {
    paths: paths.slice(0, listedMax),
    appeared: appeared.slice(0, listedMax),
    disappeared: disappeared.slice(0, listedMax),
    counts: { changed: paths.length, appeared: appeared.length, disappeared: disappeared.length, unchanged },
    truncated: paths.length > listedMax || appeared.length > listedMax || disappeared.length > listedMax,
  };
}

/** What /api/v1/diff computed before the column pass: a cursor's batches, update by update. */
async function cursorDiff(a: Archive, globs: string[], startUs: number, endUs: number): Promise<DiffAnswer> {
  const at = a.cursor({ filter: globs });
  await at.seek({ ts: startUs });
  const fold = new DiffFold(await at.stateById(), a.paths.length);
  if (endUs > startUs) {
    const c = a.cursor({ filter: globs });
    await c.seek({ ts: startUs });
    for (let b = await c.nextRaw(); b && b.ts <= endUs; b = await c.nextRaw()) {
      for (let i = b.from; i < b.to; i++) if (!b.filtered || c.matches(b.ids[i]!)) fold.apply(b.ids[i]!, b.values[i] as Value, b.ts);
    }
  }
  return fold.answer((id) => a.paths[id]!, SERVER_LIMITS.diffPathsListedMax);
}

/** The JSON form the route sends, so that -0, NaN and big ints compare as their JSON spellings. */
const text = (x: DiffAnswer): string => JSON.stringify(x);
const json = (x: DiffAnswer): unknown => JSON.parse(text(x));

async function outcome(run: () => Promise<DiffAnswer>): Promise<string> {
  try {
    return text(await run());
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
    return `error ${err.code}`;
  }
}

describe('diff by columns', () => {
  it('equals a naive replay and the cursor pass over hostile values, uniform and ragged blocks and several files (seeded)', async () => {
    const seed = scheduleSeed('DIFF_COLUMNS_SEED', 'diff by columns');
    const r = rng(seed);
    const batches = workload(seed);
    const a = await record(batches);
    try {
      expect(a.files.length, 'the pass crosses files').toBeGreaterThan(2);
      const t0 = batches[0]!.ts;
      const t1 = batches.at(-1)!.ts;
      const times = [...new Set(batches.map((b) => b.ts))];
      const anyTime = (): number => {
        const x = r();
        if (x < 0.1) return t0 - S; // before the archive
        if (x < 0.15) return t1 + S; // past it
        const t = times[Math.floor(r() * times.length)]!;
        return x < 0.6 ? t : t + (r() < 0.5 ? 1 : -1); // on a batch, or just around it
      };
      for (const globs of [['/**'], ['/p/**'], ['/r/k1*', '/p/k7'], ['/nothing/**']]) {
        for (let round = 0; round < 12; round++) {
          const x = anyTime();
          const y = round === 0 ? x : anyTime();
          const [startUs, endUs] = round === 1 ? [t0 - S, t1] : x <= y ? [x, y] : [y, x];
          const where = `seed ${seed} globs ${globs.join(' ')} (${startUs}, ${endUs}]`;
          const got = await diffRange(a, globs, startUs, endUs);
          expect(json(got), where).toEqual(json(naive(batches, globs, startUs, endUs, SERVER_LIMITS.diffPathsListedMax)));
          expect(json(got), where).toEqual(json(await cursorDiff(a, globs, startUs, endUs)));
        }
      }
    } finally {
      await a.close();
    }
  });

  it('answers up to the horizon while the writer appends, commits and rotates files under the pass (seeded)', async () => {
    const seed = scheduleSeed('DIFF_COLUMNS_LIVE_SEED', 'diff by columns, live');
    const batches = workload(seed);
    const dir = await tmpDir('tapedeck-diffcol-live-');
    // Small files, often committed: many rotations, each renaming `current` under a pass.
    const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 24 * 1024, rotateSizeBytes: 8 * 1024 });
    const recorded: Batch[] = [];
    let writing = true;
    const writer = (async () => {
      for (const [i, b] of batches.entries()) {
        recorded.push({ ts: a.writer!.append(b.updates, b.ts), updates: b.updates.map(([p, v]) => [p, canonical(v)]) });
        if (i % 3 === 2) await a.writer!.flush();
      }
      await a.writer!.flush();
      writing = false;
    })();
    try {
      let answers = 0;
      let duringWrites = 0;
      while (writing || answers < 3) {
        // What the route does: the horizon when the request arrives bounds the answer.
        const endUs = a.lastTs;
        if (endUs === 0) {
          await a.writer!.flush();
          continue;
        }
        const startUs = T0 + Math.floor((endUs - T0) / 3);
        const got = await diffRange(a, ['/**'], startUs, endUs);
        const seen = recorded.filter((b) => b.ts <= endUs);
        expect(json(got), `seed ${seed} (${startUs}, ${endUs}]`).toEqual(json(naive(seen, ['/**'], startUs, endUs, SERVER_LIMITS.diffPathsListedMax)));
        answers++;
        if (writing) duringWrites++;
      }
      await writer;
      expect(duringWrites, 'answers while the writer was at work').toBeGreaterThan(3);
      expect(a.files.length, 'files rotated under the passes').toBeGreaterThan(2);
    } finally {
      await writer.catch(() => undefined);
      await a.close();
    }
  });

  it('fails as the cursor fails on a damaged block or a file cut short, and answers alike around them (seeded)', async () => {
    const seed = scheduleSeed('DIFF_COLUMNS_DAMAGE_SEED', 'diff by columns, damage');
    const r = rng(seed);
    const batches = workload(seed);
    const a0 = await record(batches);
    const dir = a0.dir;
    // A delta block in the middle of a sealed file, and the last sealed file's last block.
    const sealed = a0.files.filter((f) => f.sealed);
    expect(sealed.length).toBeGreaterThan(1);
    const hurt = sealed[Math.floor(r() * (sealed.length - 1))]!;
    const rows = a0.table(hurt).rows.filter((row) => row.type === BlockType.DELTA);
    const row = rows[Math.floor(r() * rows.length)]!;
    const cut = sealed.at(-1)!;
    const cutRow = a0.table(cut).rows.at(-1)!;
    await a0.close();
    const at = row.offset + 48 + Math.floor(r() * (row.frameBytes - 48));
    console.log(`damaging ${hurt.name} at byte ${at} (block at ${row.offset}, ${formatTs(row.firstTs)}..${formatTs(row.lastTs)})`);
    await xorByte(join(dir, hurt.name), at, 1 + Math.floor(r() * 255));
    const a = await Archive.open(dir, { readonly: true });
    try {
      // The file is cut inside its last block while the archive is open (a disk going away under a reader).
      await truncate(join(dir, cut.name), cutRow.offset + Math.floor(cutRow.frameBytes / 2));
      const t0 = batches[0]!.ts;
      const t1 = batches.at(-1)!.ts;
      const ranges: Array<[number, number]> = [
        [t0 - S, t1], // through both
        [row.firstTs - 1, row.lastTs], // the damaged block only
        [t0, row.firstTs - 1], // before it
        [cutRow.lastTs, t1], // after the cut block
        [row.lastTs, cutRow.firstTs - 1], // between them
      ];
      for (const globs of [['/**'], ['/p/**']]) {
        for (const [startUs, endUs] of ranges) {
          const where = `seed ${seed} globs ${globs.join(' ')} (${startUs}, ${endUs}]`;
          const got = await outcome(() => diffRange(a, globs, startUs, endUs));
          expect(got, where).toBe(await outcome(() => cursorDiff(a, globs, startUs, endUs)));
        }
      }
      expect(await outcome(() => diffRange(a, ['/**'], row.firstTs - 1, row.lastTs))).toBe('error TPD_CORRUPT_BLOCK');
    } finally {
      await a.close();
    }
  });
});

describe('ColumnBlockReader', () => {
  /** Each kept path's values and batch times, in order, from a column block. */
  function byPath(raw: Uint8Array, firstTs: number, keep: ((id: number) => boolean) | null, pathCount: number, reader = new ColumnBlockReader()): Map<number, Array<[number, Value]>> {
    const b = reader.decode(raw, firstTs, keep, pathCount);
    const out = new Map<number, Array<[number, Value]>>();
    for (let c = 0; c < b.columns; c++) {
      const list: Array<[number, Value]> = [];
      for (let k = b.start[c]!; k < b.start[c + 1]!; k++) {
        const batch = b.uniform ? k - b.start[c]! : b.batchOf[k]!;
        list.push([b.ts[batch]!, b.place[c] === ColumnPlace.NUMBERS ? b.nums[k]! : (b.values[k] as Value)]);
      }
      if (list.length > 0) out.set(b.ids[c]!, list);
    }
    return out;
  }

  /** The same from the codec's decoder, update by update. */
  function byPathCodec(raw: Uint8Array, firstTs: number, keep: ((id: number) => boolean) | null): Map<number, Array<[number, Value]>> {
    const d = decodeBatches(raw, firstTs);
    const out = new Map<number, Array<[number, Value]>>();
    let at = 0;
    for (let k = 0; k < d.ts.length; k++) {
      for (let j = 0; j < d.counts[k]!; j++, at++) {
        const id = d.ids[at]!;
        if (keep && !keep(id)) continue;
        if (!out.has(id)) out.set(id, []);
        out.get(id)!.push([d.ts[k]!, d.values[at] as Value]);
      }
    }
    return out;
  }

  /** Equal values bit for bit as the diff sees them (Object.is for numbers, so -0 and NaN count). */
  function expectSame(got: Map<number, Array<[number, Value]>>, want: Map<number, Array<[number, Value]>>, where: string): void {
    expect([...got.keys()].sort((x, y) => x - y), where).toEqual([...want.keys()].sort((x, y) => x - y));
    for (const [id, list] of want) {
      const g = got.get(id)!;
      expect(g.length, where).toBe(list.length);
      list.forEach(([ts, v], i) => {
        expect(g[i]![0], where).toBe(ts);
        if (typeof v === 'number') expect(Object.is(g[i]![1], v), `${where} path ${id} #${i}: ${String(g[i]![1])} vs ${v}`).toBe(true);
        else expect(g[i]![1], where).toEqual(v);
      });
    }
  }

  /** A payload the codec reads: the column reader reads it alike, or refuses it (the pass then reads the block through the archive). */
  function readAlikeOrRefused(read: () => Map<number, Array<[number, Value]>>, want: Map<number, Array<[number, Value]>>, where: string): void {
    let got: Map<number, Array<[number, Value]>> | undefined;
    try {
      got = read();
    } catch {
      return;
    }
    expectSame(got, want, where);
  }

  /** Batches of one block; `lists` (paths of each batch) repeats a block's shape with other values. */
  function randomBlock(r: () => number, lists?: string[][]): Batch[] {
    const nPaths = 1 + Math.floor(r() * 40);
    const paths = Array.from({ length: nPaths }, (_, i) => `/x/${i}`);
    const uniform = r() < 0.4;
    const out: Batch[] = [];
    let ts = T0;
    for (let b = 0, n = lists ? lists.length : Math.floor(r() * 30); b < n; b++) {
      const list = lists ? lists[b]! : uniform ? paths : paths.filter(() => r() < 0.5);
      const kind = Math.floor(r() * 4);
      out.push({
        ts: (ts += Math.floor(r() * 3) * S),
        updates: list.map((p, i) => [p, kind === 0 ? Math.round((r() - 0.5) * 2 ** (1 + ((i * 7) % 52))) : kind === 1 ? Math.round(r() * 1e4) / 100 : r() < 0.8 ? i * 1000 + b : (HOSTILE[Math.floor(r() * HOSTILE.length)] as Value)]),
      });
    }
    return out;
  }

  it('decodes every path of a random payload as the codec does, and only the kept ones when asked (seeded)', () => {
    const seed = scheduleSeed('COLUMN_BLOCK_SEED', 'column block');
    const r = rng(seed);
    for (let round = 0; round < 300; round++) {
      const { flat, names } = flattenBatches(randomBlock(r));
      const raw = encodeBatches(flat, new ByteWriter(1024)).slice();
      const firstTs = flat.batchCount > 0 ? flat.ts[0]! : 0;
      const where = `seed ${seed} round ${round}`;
      expectSame(byPath(raw, firstTs, null, names.length), byPathCodec(raw, firstTs, null), where);
      const keep = (id: number): boolean => id % 3 === 1;
      expectSame(byPath(raw, firstTs, keep, names.length), byPathCodec(raw, firstTs, keep), `${where} kept`);
    }
  });

  it('reads a run of blocks with one reader as the codec reads each: shapes repeated, changed, damaged between (seeded)', () => {
    const seed = scheduleSeed('COLUMN_BLOCK_RUN_SEED', 'column block run');
    const r = rng(seed);
    const reader = new ColumnBlockReader();
    let lists: string[][] | undefined;
    let reused = 0;
    for (let round = 0; round < 600; round++) {
      // Mostly the last block's lists again (a poll), sometimes a new shape.
      const batches = randomBlock(r, lists !== undefined && r() < 0.7 ? lists : undefined);
      if (lists !== undefined && batches.length === lists.length) reused++;
      lists = batches.map((b) => b.updates.map(([p]) => p));
      const { flat, names } = flattenBatches(batches);
      const raw = encodeBatches(flat, new ByteWriter(1024)).slice();
      const firstTs = flat.batchCount > 0 ? flat.ts[0]! : 0;
      const where = `seed ${seed} round ${round}`;
      const keep = round % 5 === 4 ? (id: number): boolean => id % 2 === 0 : null;
      expectSame(byPath(raw, firstTs, keep, names.length, reader), byPathCodec(raw, firstTs, keep), where);
      if (r() < 0.2 && raw.length > 0) {
        // The same block with a byte flipped: refused, or read as the codec reads it.
        const bad = raw.slice();
        const at = Math.floor(r() * bad.length);
        bad[at] = bad[at]! ^ (1 + Math.floor(r() * 255));
        let want: Map<number, Array<[number, Value]>> | undefined;
        try {
          want = byPathCodec(bad, firstTs, null);
          for (const id of want.keys()) if (id >= names.length) want = undefined;
        } catch {
          want = undefined;
        }
        if (want === undefined) expect(() => byPath(bad, firstTs, null, names.length, reader), `${where} damaged at ${at}`).toThrow();
        else readAlikeOrRefused(() => byPath(bad, firstTs, null, names.length, reader), want, `${where} damaged at ${at}`);
      }
    }
    expect(reused).toBeGreaterThan(100);
  });

  it('refuses every damaged payload the codec refuses, and reads the others as it does (seeded)', () => {
    const seed = scheduleSeed('COLUMN_BLOCK_DAMAGE_SEED', 'column block damage');
    const r = rng(seed);
    let refused = 0;
    for (let round = 0; round < 2000; round++) {
      const { flat, names } = flattenBatches(randomBlock(r));
      const raw = encodeBatches(flat, new ByteWriter(1024)).slice();
      const firstTs = flat.batchCount > 0 ? flat.ts[0]! : 0;
      const x = r();
      // A flipped byte, a cut, or bytes added at the end.
      const bad = x < 0.6 && raw.length > 0 ? raw.map((v, i) => (i === Math.floor(r() * raw.length) ? v ^ (1 + Math.floor(r() * 255)) : v)) : x < 0.9 ? raw.subarray(0, Math.floor(r() * raw.length)) : Uint8Array.from([...raw, Math.floor(r() * 256)]);
      let want: Map<number, Array<[number, Value]>> | undefined;
      try {
        want = byPathCodec(bad, firstTs, null);
        // The archive refuses ids past its dictionary as well (Archive.readBlock).
        for (const id of want.keys()) if (id >= names.length) want = undefined;
      } catch {
        want = undefined;
      }
      const where = `seed ${seed} round ${round}`;
      if (want === undefined) {
        refused++;
        expect(() => byPath(bad, firstTs, null, names.length), where).toThrow();
      } else {
        readAlikeOrRefused(() => byPath(bad, firstTs, null, names.length), want, where);
      }
    }
    expect(refused).toBeGreaterThan(100);
  });
});
