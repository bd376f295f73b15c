import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ColumnKind, decodeBatches, decodeBatchesSelected, encodeBatches, type FlatBatches } from '../storage/codec/payload.js';
import { isTapedeckError } from '../protocol/errors.js';
import { fabricBatches, randomBatches, rng } from './helpers/workload.js';
import type { Batch, Value } from '../protocol/value.js';

function flatten(batches: Batch[]): FlatBatches & { ts: number[]; counts: number[]; ids: number[]; values: Value[] } {
  const ids: number[] = [];
  const values: Value[] = [];
  const dict = new Map<string, number>();
  for (const b of batches) for (const [p, v] of b.updates) {
    let id = dict.get(p);
    if (id === undefined) dict.set(p, (id = dict.size));
    ids.push(id);
    values.push(v);
  }
  return { ts: batches.map((b) => b.ts), counts: batches.map((b) => b.updates.length), ids, values, batchCount: batches.length, updateCount: ids.length };
}

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
      }),
      { numRuns: 400, seed: 17 },
    );
  });

  it("keeps Prometheus' stale NaN 0x7ff0000000000002 bit-exact between ordinary samples", () => {
    const flat = floatColumn([[0x40590000, 0x1234], STALE_NAN, STALE_NAN, [0x40590000, 0x1234], [0x80000000, 0]]);
    const d = decodeBatches(encodeBatches(flat), flat.ts[0] as number);
    expect(d.values.map(bitsOf)).toEqual(['40590000:1234', '7ff00000:2', '7ff00000:2', '40590000:1234', '80000000:0']);
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

describe('payloads written before the XOR kind', () => {
  it('decode exactly as they did (fixture of MSGPACK, DECIMAL and FLOAT64 columns)', () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/codec-v1-payloads.json', import.meta.url), 'utf8')) as { payloads: Record<string, string> };
    const inputs: Record<string, Batch[]> = { 'fabric-7-8-16': [...fabricBatches(7, 8, 16)] };
    for (const seed of [1, 2, 3, 4, 5]) inputs[`random-${seed}`] = randomBatches(seed, 100);
    let float64Columns = 0;
    for (const [name, b64] of Object.entries(fixture.payloads)) {
      const raw = Uint8Array.from(Buffer.from(b64, 'base64'));
      const flat = flatten(inputs[name] as Batch[]);
      const d = decodeBatches(raw, flat.ts[0] as number);
      expect(Array.from(d.ts)).toEqual(flat.ts);
      expect(Array.from(d.counts)).toEqual(flat.counts);
      expect(Array.from(d.ids)).toEqual(flat.ids);
      flat.values.forEach((v, i) => expectSameValue(v, d.values[i]));
      if (raw.includes(ColumnKind.FLOAT64)) float64Columns++;
    }
    expect(float64Columns).toBeGreaterThan(0);
  });
});

describe('selected decode', () => {
  it('equals the full decode filtered, batches kept aligned with count 0 where nothing is kept', () => {
    const r = rng(41);
    for (let seed = 1; seed <= 40; seed++) {
      const flat = flatten(randomBatches(seed, 150, { paths: 30 }));
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

  it('skips damaged or truncated payloads with TPD_CORRUPT_BLOCK, never another error', () => {
    const r = rng(5);
    let rejected = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const raw = Uint8Array.from(encodeBatches(flatten(randomBatches(seed, 40))));
      for (let k = 0; k < 150; k++) {
        const bad = Uint8Array.from(raw);
        bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
        const cut = r() < 0.3 ? bad.subarray(0, Math.floor(r() * bad.length)) : bad;
        try {
          decodeBatchesSelected(cut, 0, (g) => g % 2 === 0);
        } catch (err) {
          expect(isTapedeckError(err, 'TPD_CORRUPT_BLOCK'), String(err)).toBe(true);
          rejected++;
        }
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });
});
