import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ColumnKind, decodeBatches, decodeBatchesSelected, encodeBatches, type FlatBatches } from '../storage/codec/payload.js';
import { isTapedeckError } from '../protocol/errors.js';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { encodeXorColumn, xorColumnBits } from '../storage/codec/xor-float.js';
import { BlockType, FRAME_HEADER_BYTES, encodeFrame } from '../storage/codec/frame.js';
import { fabricBatches, flattenBatches, randomBatches, rng } from './helpers/workload.js';
import type { Batch, Value } from '../protocol/value.js';

/** One column of float64s given as [hi, lo] uint32 bit patterns. */
function floatColumn(bits: Array<[number, number]>): FlatBatches {
  const view = new DataView(new ArrayBuffer(8));
  // Filled with null first: an array of only doubles would quiet signalling NaNs (V8).
  const values: Value[] = new Array<Value>(bits.length).fill(null);
  bits.forEach(([hi, lo], i) => {
    view.setUint32(4, hi, true);
    view.setUint32(0, lo, true);
    values[i] = view.getFloat64(0, true);
  });
  return { ts: values.map((_, i) => 1_700_000_000_000_000 + i), counts: values.map(() => 1), ids: values.map(() => 5), values, batchCount: values.length, updateCount: values.length };
}

function bitsOf(v: unknown): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v as number, true);
  return view.getUint32(4, true).toString(16) + ':' + view.getUint32(0, true).toString(16);
}


function expectSameValue(a: unknown, b: unknown): void {
  if (typeof a === 'number') expect(bitsOf(b), `${a} vs ${String(b)}`).toBe(bitsOf(a));
  else if (a instanceof Uint8Array) expect(Buffer.from(b as Uint8Array).equals(Buffer.from(a))).toBe(true);
  else expect(b).toStrictEqual(a);
}

const STALE_NAN: [number, number] = [0x7ff00000, 0x00000002];

describe('XOR float column', () => {
  it('round-trips every float64 bit pattern exactly (property)', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const special = fc.constantFrom<[number, number]>(STALE_NAN, [0x80000000, 0], [0x7ff00000, 0], [0xfff00000, 0], [0, 1], [0x000fffff, 0xffffffff], [0x7ff80000, 0], [0xfff80000, 0x12345], [0, 0]);
    const pattern = fc.oneof(fc.tuple(u32, u32), special, fc.tuple(fc.constant(0x40590000), u32));
    fc.assert(
      fc.property(fc.array(pattern, { minLength: 1, maxLength: 60 }), (bits) => {
        const flat = floatColumn(bits);
        const d = decodeBatches(Uint8Array.from(encodeBatches(flat)), flat.ts[0] as number);
        for (let i = 0; i < bits.length; i++) expect(bitsOf(d.values[i])).toBe(bitsOf(flat.values[i]));
        // The size the writer chooses by is the size it writes.
        const f64 = Float64Array.from(flat.values as number[]);
        const w = new ByteWriter(16);
        encodeXorColumn(w, f64, 0, f64.length);
        expect(new ByteReader(w.finish()).uvar()).toBe(Math.ceil(xorColumnBits(f64, 0, f64.length) / 8));
      }),
      { numRuns: 400, seed: 17 },
    );
  });

  it("keeps Prometheus' stale NaN 0x7ff0000000000002 bit-exact between ordinary samples", () => {
    const flat = floatColumn([[0x40590000, 0x1234], STALE_NAN, STALE_NAN, [0x40590000, 0x1234], [0x80000000, 0]]);
    const d = decodeBatches(encodeBatches(flat), flat.ts[0] as number);
    expect(d.values.map(bitsOf)).toEqual(['40590000:1234', '7ff00000:2', '7ff00000:2', '40590000:1234', '80000000:0']);
  });

  it('keeps the stale NaN bit-exact in a column that also holds strings (msgpack)', () => {
    const flat = floatColumn([[0x40590000, 0x1234], STALE_NAN, [0x40590000, 0x1234]]);
    (flat.values as Value[])[2] = 'down';
    const d = decodeBatches(encodeBatches(flat), flat.ts[0] as number);
    expect(bitsOf(d.values[1])).toBe('7ff00000:2');
    expect(d.values[2]).toBe('down');
  });

  it('stores random-walk gauges in well under 8 bytes per value', () => {
    const r = rng(3);
    let x = 1234.5678;
    const values: number[] = [];
    for (let i = 0; i < 1000; i++) values.push((x += (r() - 0.5) * 0.01 * x));
    const flat = { ts: values.map((_, i) => i * 15_000_000), counts: values.map(() => 1), ids: values.map(() => 0), values, batchCount: values.length, updateCount: values.length };
    const raw = encodeBatches(flat);
    const perValue = (raw.length - 1000 * 2) / 1000; // minus timestamps and batch lists
    expect(perValue).toBeLessThan(7.5);
    const d = decodeBatches(raw, 0);
    values.forEach((v, i) => expect(d.values[i]).toBe(v));
  });

  it('stores a constant float column in about a bit per value', () => {
    const values = Array.from({ length: 800 }, () => Math.PI);
    const flat = { ts: values.map((_, i) => i), counts: values.map(() => 1), ids: values.map(() => 0), values, batchCount: values.length, updateCount: values.length };
    // 800 x (1 timestamp byte + 1 list byte) + ~100 bytes of column
    expect(encodeBatches(flat).length).toBeLessThan(1600 + 140);
  });
});

/** One column of numbers in batches of one. */
function numberColumn(values: number[]): FlatBatches {
  const vals: Value[] = new Array<Value>(values.length).fill(null);
  values.forEach((v, i) => (vals[i] = v));
  return { ts: values.map((_, i) => 1_700_000_000_000_000 + i * 1_000_000), counts: values.map(() => 1), ids: values.map(() => 3), values: vals, batchCount: values.length, updateCount: values.length };
}

/** The kind byte of a one-column payload of n batches of one update (ts 1 s apart). */
function onlyKind(raw: Uint8Array, n: number): number {
  // layout mark (2 bytes), header (3 varints), n timestamp dod svars, one path id svar, n
  // batch lists (1 byte each after the first, 2 for the first), then the one kind byte
  const r = new ByteReader(raw);
  expect([r.u8(), r.u8()]).toEqual([0, 2]);
  r.uvar(); r.uvar(); r.uvar();
  for (let i = 0; i < n; i++) r.svar();
  r.svar();
  for (let i = 0; i < n; i++) if (r.uvar() % 2 === 0) r.svar();
  return r.u8();
}

describe('PACKED integer column', () => {
  it('round-trips decimal columns of every shape exactly (property)', () => {
    const decimals = fc.integer({ min: 0, max: 9 });
    const shape = fc.record({
      k: decimals,
      start: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
      step: fc.oneof(fc.constant(0), fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 2 ** 30 })),
      noise: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 2 ** 45 })),
      spikes: fc.double({ min: 0, max: 0.3, noNaN: true }),
      n: fc.integer({ min: 1, max: 300 }),
      seed: fc.integer({ min: 1, max: 1e9 }),
    });
    fc.assert(
      fc.property(shape, ({ k, start, step, noise, spikes, n, seed }) => {
        const r = rng(seed);
        const values: number[] = [];
        let s = start;
        for (let i = 0; i < n; i++) {
          s += step + Math.floor(r() * (noise + 1));
          let v = s;
          if (r() < spikes) v = Math.floor((r() - 0.5) * 2 ** 50);
          v = Math.max(-(2 ** 50), Math.min(2 ** 50, v));
          values.push(k === 0 ? v : Math.round(v) / 10 ** k);
        }
        const flat = numberColumn(values);
        const d = decodeBatches(encodeBatches(flat), flat.ts[0] as number);
        values.forEach((v, i) => expect(Object.is(d.values[i], v), `${i}: ${v} vs ${String(d.values[i])}`).toBe(true));
      }),
      { numRuns: 300, seed: 23 },
    );
  });

  it('costs a few bytes for a constant or steadily growing column, about 5 bits a value for a +-1.5 gauge', () => {
    const n = 1000;
    const base = encodeBatches(numberColumn(Array.from({ length: n }, () => 0))).length;
    const constant = numberColumn(Array.from({ length: n }, () => 37.5));
    const counter = numberColumn(Array.from({ length: n }, (_, i) => 1e9 + i * 15_000));
    const r = rng(9);
    let x = 120;
    const gauge = numberColumn(Array.from({ length: n }, () => (x = Math.round((x + (r() - 0.5) * 3) * 10) / 10)));
    for (const [flat, kind] of [[constant, ColumnKind.PACKED + 16 + 1], [counter, ColumnKind.PACKED + 32], [gauge, ColumnKind.PACKED + 16 + 1]] as const) {
      const raw = encodeBatches(flat);
      expect(onlyKind(raw, n)).toBe(kind);
      const d = decodeBatches(raw, flat.ts[0] as number);
      Array.from(flat.values).forEach((v, i) => expect(d.values[i]).toBe(v));
    }
    expect(encodeBatches(constant).length - base).toBeLessThan(8);
    expect(encodeBatches(counter).length - base).toBeLessThan(12);
    expect(encodeBatches(gauge).length - base).toBeLessThan(5 + (n * 5) / 8);
  });

  it('stores the fabric workload in under 0.65 bytes per update (16 k-update blocks)', () => {
    const batches = [...fabricBatches(1, 64, 32 * 8)];
    let bytes = 0;
    let updates = 0;
    for (let b = 0; b < batches.length; b += 32) {
      const flat = flattenBatches(batches.slice(b, b + 32)).flat;
      bytes += encodeBatches(flat).length;
      updates += flat.updateCount;
    }
    expect(bytes / updates).toBeLessThan(0.65);
  });
});

describe('number columns at the edges of the decimal kinds', () => {
  it('keeps -0, infinities, NaN and integers past 2^51 exact next to ordinary decimals', () => {
    const edges = [-0, Infinity, -Infinity, NaN, 2 ** 52, -(2 ** 53), 2 ** 51, 2 ** 51 + 1, 1e300, 5e-324];
    for (const edge of edges) {
      for (const at of [0, 1, 5]) {
        const values = [1.5, 2, 3.25, 4, 5.5, 6];
        values.splice(at, 0, edge);
        const flat = numberColumn(values);
        const d = decodeBatches(encodeBatches(flat), flat.ts[0] as number);
        values.forEach((v, i) => expect(Object.is(d.values[i], v), `${String(edge)} at ${at}: ${v} vs ${String(d.values[i])}`).toBe(true));
      }
    }
  });
});

describe('payloads written before the XOR kind', () => {
  it('decode exactly as they did (fixture of MSGPACK, DECIMAL and FLOAT64 columns)', () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/codec-v1-payloads.json', import.meta.url), 'utf8')) as { payloads: Record<string, string> };
    const inputs: Record<string, Batch[]> = { 'fabric-7-8-16': [...fabricBatches(7, 8, 16)] };
    for (const seed of [1, 2, 3, 4, 5]) inputs[`random-${seed}`] = randomBatches(seed, 100);
    for (const [name, b64] of Object.entries(fixture.payloads)) {
      const raw = Uint8Array.from(Buffer.from(b64, 'base64'));
      const flat = flattenBatches(inputs[name] as Batch[]).flat;
      const d = decodeBatches(raw, flat.ts[0] as number);
      expect(Array.from(d.ts)).toEqual(flat.ts);
      expect(Array.from(d.counts)).toEqual(flat.counts);
      expect(Array.from(d.ids)).toEqual(flat.ids);
      flat.values.forEach((v, i) => expectSameValue(v, d.values[i]));
      // The writer of today picks other kinds, so these bytes exercise the old ones.
      expect(Buffer.from(encodeBatches(flat)).equals(Buffer.from(raw))).toBe(false);
    }
  });
});

/** Prometheus-like columns: counters, 2-decimal gauges, noisy floats, flags (also in test/fixtures/codec-v1-packed-payloads.json's maker). */
function promLike(): Batch[] {
  const out: Batch[] = [];
  for (let k = 0; k < 40; k++) {
    const updates: Array<[string, Value]> = [];
    for (let i = 0; i < 30; i++) {
      const kind = i % 5;
      const v: Value = kind === 0 ? i * 1_000_003 + k * (i + 1) * 1500 + ((i * 7 + k * 13) % 100)
        : kind === 1 ? Math.round((i * 3 + Math.sin(i + k) * 5) * 100) / 100
        : kind === 2 ? Math.sin(i * 0.3 + k * 0.1) * 1e3
        : kind === 3 ? (k % 7 === 0 ? 1 : 0) + i
        : i * 10 + k;
      updates.push([`/prom/m${kind}/i=${i}`, v]);
    }
    out.push({ ts: 1_700_000_000_000_000 + k * 15_000_000, updates });
  }
  return out;
}

describe('payloads of layout 1 (kind byte before each column), written before layout 2', () => {
  it('decode exactly as they did, fully and selected (fixture with XOR, DECIMAL_K and PACKED columns)', () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/codec-v1-packed-payloads.json', import.meta.url), 'utf8')) as { payloads: Record<string, string> };
    const inputs: Record<string, Batch[]> = { 'fabric-7-8-64': [...fabricBatches(7, 8, 64)], 'prom-like': promLike() };
    for (const seed of [11, 12, 13]) inputs[`random-${seed}`] = randomBatches(seed, 100);
    expect(Object.keys(fixture.payloads).sort()).toEqual(Object.keys(inputs).sort());
    for (const [name, b64] of Object.entries(fixture.payloads)) {
      const raw = Uint8Array.from(Buffer.from(b64, 'base64'));
      expect(raw[0], name).not.toBe(0);
      const flat = flattenBatches(inputs[name] as Batch[]).flat;
      const d = decodeBatches(raw, flat.ts[0] as number);
      expect(Array.from(d.ts)).toEqual(flat.ts);
      expect(Array.from(d.counts)).toEqual(flat.counts);
      expect(Array.from(d.ids)).toEqual(flat.ids);
      flat.values.forEach((v, i) => expectSameValue(v, d.values[i]));
      const sel = decodeBatchesSelected(raw, flat.ts[0] as number, (g) => g % 3 === 1);
      expect(Array.from(sel.ids)).toEqual(flat.ids.filter((g) => g % 3 === 1));
      flat.values.filter((_, i) => (flat.ids[i] as number) % 3 === 1).forEach((v, i) => expectSameValue(v, sel.values[i]));
      // Today's writer keeps the kind bytes together (layout 2): other bytes, same length.
      const now = encodeBatches(flat);
      expect([now[0], now[1]]).toEqual([0, 2]);
      expect(now.length).toBe(raw.length + 2);
    }
  });

  it('stores a remote_write block of one sample per series in under 4.3 bytes a sample after LZ4 (layout 1: 4.68)', () => {
    // bench:prom-write's series 2 000..3 999 at one scrape: the block a durable ack seals.
    const metrics = 20;
    const counter = (i: number): boolean => i % metrics < 9 || i % metrics === 12 || i % metrics === 13;
    const updates: Array<[string, Value]> = [];
    for (let i = 2000; i < 4000; i++) {
      let x = (i * 2654435761 + 10 * 40503) >>> 0;
      x ^= x >>> 13;
      const v = counter(i) ? i * 1_000_003 + 10 * ((i % 97) + 1) * 15_000 + (x % 1000) : Math.round((i % 500) * 10 + (x % 10_000) / 100) / 100;
      updates.push([`/prom/m${i % metrics}/instance=host-${Math.floor(i / metrics) % 100}`, v]);
    }
    const flat = flattenBatches([{ ts: 1_700_000_000_000_000, updates }]).flat;
    flat.ids = flat.ids.map((id) => id + 2000);
    const frame = encodeFrame({ type: BlockType.DELTA, firstTs: flat.ts[0] as number, lastTs: flat.ts[0] as number, batches: 1, updates: 2000 }, encodeBatches(flat));
    expect((frame.length - FRAME_HEADER_BYTES) / 2000).toBeLessThan(4.3);
  });
});

describe('selected decode', () => {
  it('equals the full decode filtered, batches kept aligned with count 0 where nothing is kept', () => {
    const r = rng(41);
    for (let seed = 1; seed <= 40; seed++) {
      const flat = flattenBatches(randomBatches(seed, 150, { paths: 30 })).flat;
      const raw = encodeBatches(flat);
      const full = decodeBatches(raw, flat.ts[0] as number);
      const p = [0, 0.1, 0.5, 1][seed % 4] as number;
      const keepSet = new Set<number>();
      for (let id = 0; id < 30; id++) if (r() < p) keepSet.add(id);
      let asked = 0;
      const sel = decodeBatchesSelected(raw, flat.ts[0] as number, (g) => (asked++, keepSet.has(g)));
      expect(asked).toBeLessThanOrEqual(30); // once per column, not per update
      expect(Array.from(sel.ts)).toEqual(Array.from(full.ts));
      let at = 0;
      let out = 0;
      for (let b = 0; b < full.counts.length; b++) {
        let m = 0;
        for (let j = 0; j < (full.counts[b] as number); j++, at++) {
          if (!keepSet.has(full.ids[at] as number)) continue;
          expect(sel.ids[out]).toBe(full.ids[at]);
          expectSameValue(full.values[at], sel.values[out]);
          out++;
          m++;
        }
        expect(sel.counts[b]).toBe(m);
      }
      expect(sel.ids.length).toBe(out);
      expect(sel.values.length).toBe(out);
    }
  });

  it('rejects damaged or truncated payloads (every column kind) with TPD_CORRUPT_BLOCK, never another error, selected or not', () => {
    const r = rng(5);
    const r2 = rng(6);
    let rejected = 0;
    const payloads: Uint8Array[] = [];
    for (let seed = 1; seed <= 10; seed++) payloads.push(Uint8Array.from(encodeBatches(flattenBatches(randomBatches(seed, 40)).flat)));
    payloads.push(Uint8Array.from(encodeBatches(flattenBatches([...fabricBatches(2, 4, 40)]).flat)));
    const floats = Array.from({ length: 40 }, () => (r2() - 0.5) * 1e3);
    payloads.push(Uint8Array.from(encodeBatches({ ...numberColumn(floats) })));
    for (const raw of payloads) {
      for (let k = 0; k < 150; k++) {
        const bad = Uint8Array.from(raw);
        bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
        const cut = r() < 0.3 ? bad.subarray(0, Math.floor(r() * bad.length)) : bad;
        for (const decode of [() => decodeBatchesSelected(cut, 0, (g) => g % 2 === 0), () => decodeBatches(cut, 0)]) {
          try {
            decode();
          } catch (err) {
            expect(isTapedeckError(err, 'TPD_CORRUPT_BLOCK'), String(err)).toBe(true);
            rejected++;
          }
        }
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });
});

describe('payloads smaller than one bit per update', () => {
  // Linear counters over many paths with a steady clock: PACKED columns of width 0, the
  // same path list every batch, timestamps of one byte each. The decoder's sanity bound on
  // counts once refused these (TPD_CORRUPT_BLOCK "impossible counts").
  it('decodes many linear columns of a steady clock, fully and selected', () => {
    const batches: Batch[] = [];
    for (let i = 0; i < 400; i++) {
      const updates: Array<[string, Value]> = [];
      for (let k = 0; k < 50; k++) updates.push([`/s/k${k}`, i * 1000 + k]);
      batches.push({ ts: 1_700_000_000_000_000 + i * 1000, updates });
    }
    const flat = flattenBatches(batches).flat;
    const raw = encodeBatches(flat, new ByteWriter(1 << 16)).slice();
    expect(raw.length * 8).toBeLessThan(flat.updateCount);
    const d = decodeBatches(raw, flat.ts[0] as number);
    expect(Array.from(d.ids)).toEqual(flat.ids);
    expect(d.values).toEqual(flat.values);
    const sel = decodeBatchesSelected(raw, flat.ts[0] as number, (id) => id === 7);
    expect(sel.values).toEqual(flat.values.filter((_, i) => flat.ids[i] === 7));
  });
});
