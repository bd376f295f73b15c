/**
 * Columns read up to a batch (storage/column-block.ts decode's endBatch, storage/
 * column-numbers.ts readPrefix and decodePackedPrefixF64), against the full read, bit for
 * bit: what a state after a seek takes from the block at its position (storage/
 * cursor-state.ts). Seeded (the seed is printed; TPD_PREFIX_SEED replays it).
 *
 * - Column bodies alone: every decimal kind the writer makes (PACKED of orders 0, 1, 2, of
 *   narrow and wide residuals, with and without exceptions; DECIMAL_K) and DECIMAL, for
 *   every prefix length: the values read equal the full read's first ones, and the reader
 *   ends where the full read ends.
 * - Whole blocks of 16 384 and 32 768 updates (the block sizes in question): polls of 512
 *   paths (uniform: read in part), ragged batches (a path twice in a batch, batches with
 *   none: read in full), columns of every kind side by side, with and without a filter, at
 *   every end from 0 past the last batch and starts up to it: each kept column's
 *   occurrences from its last before the start to the end equal the full decode's.
 */
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { ColumnKind, encodeColumnBody } from '../storage/codec/columns.js';
import { encodeBatches } from '../storage/codec/payload.js';
import { ColumnBlockReader, ColumnPlace, type ColumnBlock } from '../storage/column-block.js';
import { DecimalColumns } from '../storage/column-numbers.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { flattenBatches, randomValue, rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const SEED = scheduleSeed('TPD_PREFIX_SEED', 'column-prefix');

/** What the reader's scratch holds before each decode of the block tests. */
const POISON = new Float64Array(new BigUint64Array([0x7ff80000deadbeefn]).buffer)[0] as number;

const bits = (x: number): bigint => new BigUint64Array(Float64Array.of(x).buffer)[0] as bigint;

/** Values the encoder turns into each decimal kind: which one depends on their spread and exponent. */
function numberColumn(r: () => number, n: number): number[] {
  const shape = Math.floor(r() * 9);
  const k = Math.floor(r() * 4);
  const scale = 10 ** k;
  const out: number[] = [];
  let v = Math.floor((r() - 0.5) * 1e6);
  for (let i = 0; i < n; i++) {
    if (shape === 0) v = Math.floor(r() * 5000); // order 0, narrow
    else if (shape === 1) v += Math.floor(r() * 100); // counter: order 1
    else if (shape === 2) v += 1000 + Math.floor(r() * 3); // steady rate: order 2
    else if (shape === 3) v += r() < 0.05 ? Math.floor((r() - 0.5) * 2 ** 40) : Math.floor(r() * 10); // spikes: exceptions
    else if (shape === 4) v = Math.floor((r() - 0.5) * 2 ** 45); // wide residuals
    else if (shape === 5) v += r() < 0.1 ? 2 ** 30 : 1; // exceptions of a narrow width
    else if (shape === 6) v = r() < 0.5 ? 0 : -Math.floor(r() * 2 ** 20);
    else if (shape === 7) v = 2 ** 51 - 1 - Math.floor(r() * 3); // at the scaled limit
    else v += Math.floor((r() - 0.5) * 2 ** 26) + (r() < 0.03 ? 2 ** 44 : 0); // 27-bit residuals (wide), now and then a spike
    out.push(v / scale);
  }
  return out;
}

/** A column body as the writer writes it, and its kind. */
function encoded(values: Value[]): { kind: number; body: Uint8Array } {
  const w = new ByteWriter(64);
  const order = Uint32Array.from(values.keys());
  const kind = encodeColumnBody(w, values, order, 0, values.length);
  return { kind, body: w.finish().slice() };
}

/** A DECIMAL body (kind 1: the writer no longer makes it, readers still read it): exponent byte, svar deltas. */
function decimalBody(r: () => number, n: number): { scaled: number[]; body: Uint8Array; k: number } {
  const k = Math.floor(r() * 4);
  const w = new ByteWriter(64);
  w.u8(k);
  const scaled: number[] = [];
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.floor((r() - 0.5) * (r() < 0.1 ? 2 ** 30 : 300));
    acc += d;
    scaled.push(acc);
    w.svar(d);
  }
  return { scaled, body: w.finish().slice(), k };
}

function sameBits(want: Float64Array, got: Float64Array, n: number, what: string): void {
  for (let i = 0; i < n; i++) {
    if (bits(want[i] as number) !== bits(got[i] as number)) throw new Error(`${what}: value ${i} is ${got[i]}, want ${want[i]}`);
  }
}

describe('column bodies read up to a count', () => {
  it('give the full read\'s first values bit for bit and end where it ends, for every decimal kind and every prefix', () => {
    const r = rng(SEED);
    const kinds = new Set<number>();
    const widths = new Set<string>();
    const d = new DecimalColumns();
    for (let t = 0; t < 600; t++) {
      const n = 1 + Math.floor(r() * (r() < 0.3 ? 8 : 140));
      let body: Uint8Array;
      let kind: number;
      if (t % 10 === 9) {
        const dec = decimalBody(r, n);
        body = dec.body;
        kind = ColumnKind.DECIMAL;
      } else ({ kind, body } = encoded(numberColumn(r, n)));
      const full = new Float64Array(n + 2);
      const fr = new ByteReader(body);
      if (!d.read(fr, kind, full, 1, n)) continue;
      expect(fr.pos).toBe(body.length);
      kinds.add(kind === ColumnKind.DECIMAL ? kind : kind >= ColumnKind.PACKED ? ColumnKind.PACKED + (kind & 0x30) : kind & 0xf0);
      if (kind >= ColumnKind.PACKED) {
        // The width byte: narrow or wide residuals, exceptions or not (each path of the reader).
        const hr = new ByteReader(body);
        for (let o = 0; o < (kind - ColumnKind.PACKED) >> 4; o++) hr.svar();
        const w = hr.u8();
        widths.add(`${(w & 0x7f) > 24 ? 'wide' : 'narrow'}${w & 0x80 ? ' with exceptions' : ''}`);
      }
      for (let need = 0; need <= n; need++) {
        for (const skip of [0, Math.max(0, need - 1), Math.max(0, need - 2), Math.floor(r() * (need + 1))]) {
          const got = new Float64Array(n + 2).fill(-1);
          const pr = new ByteReader(body);
          expect(d.readPrefix(pr, kind, got, 1, n, need, skip)).toBe(true);
          expect(pr.pos, `kind ${kind} n ${n} need ${need}: where the body ends`).toBe(body.length);
          sameBits(full.subarray(1 + skip), got.subarray(1 + skip), need - skip, `kind ${kind.toString(16)} n ${n} values [${skip}, ${need})`);
          // Nothing written outside the column.
          expect(got[0]).toBe(-1);
          expect(got[n + 1]).toBe(-1);
        }
      }
    }
    // Every order of PACKED, DECIMAL_K and DECIMAL came up.
    expect([...kinds].sort((a, b) => a - b)).toEqual([ColumnKind.DECIMAL, ColumnKind.DECIMAL_K, ColumnKind.PACKED, ColumnKind.PACKED + 16, ColumnKind.PACKED + 32]);
    expect([...widths].sort(), [...widths].join()).toEqual(['narrow', 'narrow with exceptions', 'wide', 'wide with exceptions']);
  });

  it('refuse in the part read what the full read refuses, and a body cut short anywhere', () => {
    const r = rng(SEED + 1);
    const d = new DecimalColumns();
    let cut = 0;
    for (let t = 0; t < 300; t++) {
      const n = 3 + Math.floor(r() * 60);
      const { kind, body } = encoded(numberColumn(r, n));
      if (kind < ColumnKind.PACKED && (kind & 0xf0) !== ColumnKind.DECIMAL_K) continue;
      const short = body.subarray(0, Math.floor(r() * body.length));
      const need = Math.floor(r() * n);
      expect(() => d.readPrefix(new ByteReader(short), kind, new Float64Array(n), 0, n, need)).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_BLOCK' }) as Error);
      cut++;
    }
    expect(cut).toBeGreaterThan(100);
  });
});

/** 512 paths polled every batch (a fabric block): numbers of every shape, a few other kinds. */
function pollBatches(r: () => number, batches: number, paths: number): Batch[] {
  const cols = Array.from({ length: paths }, (_, p): Value[] => {
    if (p % 61 === 5) return Array.from({ length: batches }, () => randomValue(r));
    if (p % 53 === 7) return Array.from({ length: batches }, () => r() * 1000);
    if (p % 47 === 3) return Array.from({ length: batches }, (_, i) => `s${i % 3}`);
    return numberColumn(r, batches);
  });
  const out: Batch[] = [];
  let ts = 1_700_000_000_000_000;
  for (let b = 0; b < batches; b++) {
    ts += 1_000_000 + Math.floor(r() * 1000);
    out.push({ ts, updates: cols.map((c, p): Update => [`/f/p${p}`, c[b] as Value]) });
  }
  return out;
}

/** Ragged batches of a skewed choice of paths: some twice in a batch, some batches empty. */
function raggedBatches(r: () => number, updates: number, paths: number): Batch[] {
  const series = Array.from({ length: paths }, () => numberColumn(r, 400));
  const at = new Array<number>(paths).fill(0);
  const out: Batch[] = [];
  let ts = 1_700_000_000_000_000;
  let total = 0;
  while (total < updates) {
    ts += Math.floor(r() * 3) * 1000;
    const n = Math.min(updates - total, r() < 0.05 ? 0 : Math.floor(r() * 900));
    const u: Update[] = [];
    for (let i = 0; i < n; i++) {
      const p = Math.floor(r() * r() * paths);
      const s = series[p] as number[];
      const v: Value = p % 29 === 4 ? randomValue(r) : (s[at[p]! % s.length] as number);
      at[p]!++;
      u.push([`/r/p${p}`, v]);
    }
    total += n;
    out.push({ ts, updates: u });
  }
  return out;
}

/** Kept column s's occurrence o, as stored (numbers or values). */
function valueAt(b: ColumnBlock, s: number, o: number): Value {
  return b.place[s] === ColumnPlace.NUMBERS ? (b.nums[o] as number) : (b.values[o] as Value);
}

/** Kept column s's occurrences in batches before `end`, from its last one before `start`: [from, to). */
function occurrencesBefore(b: ColumnBlock, s: number, end: number, start: number): [number, number] {
  const first = b.start[s] as number;
  const last = b.start[s + 1] as number;
  const before = (batch: number): number => {
    if (b.uniform) return Math.min(last, first + batch);
    let o = first;
    while (o < last && (b.batchOf[o] as number) < batch) o++;
    return o;
  };
  return [Math.max(first, before(start) - 1), before(end)];
}

function sameValue(want: Value, got: Value): boolean {
  if (typeof want === 'number') return typeof got === 'number' && bits(want) === bits(got);
  return JSON.stringify(want, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)) === JSON.stringify(got, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
}

/** The full decode's kept columns, copied out of the reader's scratch. */
function snapshot(b: ColumnBlock): { ids: number[]; occ: Value[][]; batchOf: number[][] } {
  const ids: number[] = [];
  const occ: Value[][] = [];
  const batchOf: number[][] = [];
  for (let s = 0; s < b.columns; s++) {
    ids.push(b.ids[s] as number);
    const from = b.start[s] as number;
    const to = b.start[s + 1] as number;
    const vs: Value[] = [];
    const bs: number[] = [];
    for (let o = from; o < to; o++) {
      vs.push(valueAt(b, s, o));
      bs.push(b.uniform ? o - from : (b.batchOf[o] as number));
    }
    occ.push(vs);
    batchOf.push(bs);
  }
  return { ids, occ, batchOf };
}

describe('blocks read up to a batch', () => {
  for (const updates of [16_384, 32_768]) {
    it(`give each kept column's occurrences before the end bit for bit (blocks of ${updates} updates: polls and ragged, filtered or not)`, () => {
      const r = rng(SEED + updates);
      const blocks = [pollBatches(r, updates / 512, 512), raggedBatches(r, updates, 700)];
      let checked = 0;
      for (const batches of blocks) {
        const { flat } = flattenBatches(batches);
        const raw = encodeBatches(flat).slice();
        const pathCount = Math.max(...flat.ids) + 1;
        const firstTs = flat.ts[0] as number;
        const nb = batches.length;
        for (const keep of [null, (id: number): boolean => id % 3 !== 1]) {
          const want = snapshot(new ColumnBlockReader().decode(raw, firstTs, keep, pathCount));
          // One reader throughout, as the state's: its shape cache sees the block again and again.
          const reader = new ColumnBlockReader();
          const ends = [0, 1, 2, nb - 1, nb, nb + 7, Infinity];
          for (let i = 0; i < 12; i++) ends.push(Math.floor(r() * nb));
          for (const end of ends) {
            const within = Math.min(end, nb);
            // From the start, from the end (the state's older blocks: only the last), from just before it, anywhere.
            for (const start of [0, end, Math.max(0, within - 1), Math.floor(r() * (within + 1))]) {
              // The scratch poisoned first: a value the decode should have written and did not shows.
              const prev = reader.decode(raw, firstTs, keep, pathCount, 0, 0);
              prev.nums.fill(POISON);
              prev.values.fill('poison');
              const b = reader.decode(raw, firstTs, keep, pathCount, end, start);
              // Only polls (uniform blocks) are read in part; ragged blocks in full.
              expect(b.uniform).toBe(batches === blocks[0]);
              expect(b.endBatch).toBe(b.uniform ? within : nb);
              expect(b.fromBatch).toBe(b.uniform ? Math.min(start, within) : 0);
              expect(b.columns).toBe(want.ids.length);
              for (let s = 0; s < b.columns; s++) {
                expect(b.ids[s]).toBe(want.ids[s]);
                const [from, to] = occurrencesBefore(b, s, end, start);
                const bs = want.batchOf[s] as number[];
                const wantFrom = Math.max(0, bs.filter((x) => x < start).length - 1);
                const wantTo = bs.filter((x) => x < end).length;
                const first = b.start[s] as number;
                if (from - first !== wantFrom || to - first !== wantTo) throw new Error(`end ${end} start ${start} column ${s}: occurrences [${from - first}, ${to - first}), want [${wantFrom}, ${wantTo})`);
                for (let o = from; o < to; o++) {
                  const w = (want.occ[s] as Value[])[o - first] as Value;
                  if (!sameValue(w, valueAt(b, s, o))) throw new Error(`${updates} updates, end ${end}, start ${start}, column ${s} (path ${b.ids[s]}), occurrence ${o - first}: ${String(valueAt(b, s, o))}, want ${String(w)}`);
                  checked++;
                }
              }
            }
          }
        }
      }
      expect(checked).toBeGreaterThan(updates * 4);
    });
  }
});
