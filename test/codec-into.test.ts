/**
 * decodeBatchesInto (storage/codec/payload-into.ts: chains of occurrences, decimal columns
 * read inline; longer columns grouped, payload.ts) and decodeBatches' numbers path (column-decode.ts decodeColumnsF64) against
 * the codec of fa3a187 (test/helpers/codec-oracle/), on seeded blocks shaped like the mixed
 * workload (many paths, each 1 to 4 times a block) with hostile values: every NaN shape,
 * -0, ±Inf, decimals long and short (varints of 1 to 8 bytes, at the payload's very end
 * too), FLOAT64, XOR and PACKED columns among the decimal ones, MSGPACK columns (declined),
 * "same as previous" batch lists; then damaged: a refusal (TPD_CORRUPT_BLOCK) exactly where
 * the oracle refuses, otherwise the oracle's bits.
 */
import { describe, expect, it } from 'vitest';
import * as now from '../storage/codec/payload.js';
import * as oracle from './helpers/codec-oracle/payload.js';
import { ByteWriter as OracleByteWriter } from './helpers/codec-oracle/bytes.js';
import { ByteReader } from '../storage/codec/bytes.js';
import { isTapedeckError } from '../protocol/errors.js';
import { valueArray, type Value } from '../protocol/value.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
function fromBits(b: bigint): number {
  u64[0] = b;
  return f64[0] as number;
}
function bitsOf(v: number): string {
  f64[0] = v;
  return (u64[0] as bigint).toString(16);
}

const HOSTILE = [
  fromBits(0x7ff0000000000002n), // Prometheus' stale marker (signalling)
  fromBits(0x7ff0000000000001n),
  fromBits(0xfff4000000001234n),
  fromBits(0x7ff8000000000000n),
  fromBits(0xfff8000000000000n),
  fromBits(0x7ff8000000abcdefn),
  -0, Infinity, -Infinity, 5e-324, -5e-324, Number.MAX_VALUE, -Number.MAX_VALUE,
  2 ** 51, -(2 ** 51), 2 ** 53, 1e21, 1e-300, 0.1, 1e-9, 123456.123456789,
];

interface Block {
  ts: number[];
  counts: number[];
  ids: number[];
  values: Value[];
}

/** A value of a path of the given shape (the same shape all along a block keeps a column's kind). */
function valueOf(r: () => number, shape: number, level: { v: number }): Value {
  switch (shape) {
    case 0: return HOSTILE[Math.floor(r() * HOSTILE.length)] as number;
    case 1: return Math.round((level.v += r() - 0.5) * 100) / 100; // the mixed workload's walk
    case 2: return Math.round(r() * 2 ** 40) / 10 ** Math.floor(r() * 10); // long varints, 0 to 9 decimals
    case 3: return (level.v += Math.floor(r() * 300)); // counter (PACKED when long enough)
    case 4: return r() * 1e6 - 5e5; // noisy doubles (XOR or FLOAT64)
    case 5: return r() < 0.5 ? 'text' : r() < 0.5 ? null : true; // a MSGPACK column
    default: return Math.round((level.v += r() * 2 - 1) * 1e4) / 1e4;
  }
}

/**
 * A block of many paths each seen a few times (1 to 4 a block), in batches listing runs of
 * consecutive paths as the mixed workload does, some lists repeated ("same as previous");
 * `shapes` picks each path's shape.
 */
function mixedBlock(r: () => number, shapes: number[]): Block {
  const paths = shapes.length;
  // Mostly short columns (decoded along chains), some longer (grouped: payload.ts CHAIN_UPDATES_PER_COLUMN_MAX).
  const perPath = r() < 0.75 ? 1 + r() * 3 : 4 + r() * 6;
  const batchSize = 1 + Math.floor(r() * 120);
  const batches = Math.max(1, Math.round((paths * perPath) / batchSize));
  const levels = shapes.map(() => ({ v: r() * 200 - 50 }));
  const b: Block = { ts: [], counts: [], ids: [], values: [] };
  let ts = 1_700_000_000_000_000 + Math.floor(r() * 1e12);
  let p = Math.floor(r() * paths);
  let list: number[] = [];
  for (let i = 0; i < batches; i++) {
    ts += r() < 0.1 ? 0 : 1000 + Math.floor(r() * 1e6);
    if (i === 0 || r() > 0.05) {
      list = [];
      for (let j = 0; j < batchSize; j++, p = (p + 1 + (r() < 0.1 ? Math.floor(r() * 50) : 0)) % paths) if (!list.includes(p)) list.push(p);
    }
    b.ts.push(ts);
    b.counts.push(list.length);
    for (const k of list) {
      b.ids.push(k * 3 + 7);
      b.values.push(valueOf(r, shapes[k] as number, levels[k] as { v: number }));
    }
  }
  return b;
}

/** The payload as the frozen codec writes it (the same bytes as today's: test/codec-identity.test.ts). */
function encode(b: Block): Uint8Array {
  const values = valueArray(b.values.length);
  b.values.forEach((v, i) => (values[i] = v));
  return oracle.encodeBatches({ ts: b.ts, counts: b.counts, ids: b.ids, values, batchCount: b.ts.length, updateCount: b.ids.length }, new OracleByteWriter(64)).slice();
}

function key(v: Value | undefined): unknown {
  return typeof v === 'number' ? `n${bitsOf(v)}` : v;
}

/** key, every NaN one: the oracle's plain arrays did not keep a quiet NaN's payload in every V8 tier (protocol/value.ts valueArray). */
function anyNaN(v: unknown): unknown {
  return typeof v === 'string' && /^n(7ff|fff)[89a-f]/.test(v) && !/^n(7ff|fff)0000000000000$/.test(v) ? 'NaN' : v;
}

interface Outcome {
  ts: number[];
  counts: number[];
  ids: number[];
  values: unknown[];
}

function nansAsOne(o: unknown): unknown {
  return typeof o === 'string' ? o : { ...(o as Outcome), values: (o as Outcome).values.map(anyNaN) };
}

/** decodeBatches of the oracle: its ids and values (numbers as bits), or 'refused'. */
function oracleOutcome(raw: Uint8Array, firstTs: number): 'refused' | Outcome {
  try {
    const d = oracle.decodeBatches(raw, firstTs);
    return { ts: Array.from(d.ts), counts: Array.from(d.counts), ids: Array.from(d.ids), values: d.values.map(key) };
  } catch (err) {
    if (!isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw err;
    return 'refused';
  }
}

/** decodeBatchesInto's outcome in the oracle's terms, or 'declined'. */
function intoOutcome(raw: Uint8Array, firstTs: number, out: now.NumberBatches): 'refused' | 'declined' | Outcome {
  try {
    if (!now.decodeBatchesInto(raw, firstTs, out)) return 'declined';
  } catch (err) {
    if (!isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw err;
    return 'refused';
  }
  const ids = Array.from(out.ids.subarray(0, out.updateCount));
  expect(out.idMax).toBe(ids.reduce((m, x) => Math.max(m, x), 0));
  return {
    ts: Array.from(out.ts.subarray(0, out.batchCount)),
    counts: Array.from(out.counts.subarray(0, out.batchCount)),
    ids,
    values: Array.from(out.nums.subarray(0, out.updateCount), key),
  };
}

/** decodeBatches' outcome (numbers compared by their bits). */
function nowOutcome(raw: Uint8Array, firstTs: number): 'refused' | Outcome {
  try {
    const d = now.decodeBatches(raw, firstTs);
    return { ts: Array.from(d.ts), counts: Array.from(d.counts), ids: Array.from(d.ids), values: d.values.map(key) };
  } catch (err) {
    if (!isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw err;
    return 'refused';
  }
}

describe('decodeBatchesInto on blocks of many short columns', () => {
  it('gives the oracle’s bits on hostile mixed-like blocks, declines MSGPACK ones, and refuses exactly where the oracle refuses when damaged (seeded)', () => {
    const seed = scheduleSeed('CODEC_INTO_SEED', 'codec into');
    const r = rng(seed);
    const out = now.newNumberBatches();
    const seen = { read: 0, declined: 0, damagedRead: 0, damagedRefused: 0, chains: 0, grouped: 0 };
    for (let i = 0; i < 160; i++) {
      const paths = 1 + Math.floor(r() * (r() < 0.3 ? 3000 : 300));
      // Mostly the mixed workload's decimal walk; the other shapes in some blocks, seldom or often.
      const other = r() < 0.3 ? 0 : r() < 0.5 ? 0.02 : 0.3;
      const withValues = r() < 0.15;
      const shapes = Array.from({ length: paths }, () => (r() < other ? [0, 2, 3, 4, 6][Math.floor(r() * 5)] as number : withValues && r() < 0.05 ? 5 : 1));
      const b = mixedBlock(r, shapes);
      const raw = encode(b);
      const firstTs = b.ts[0] as number;
      const label = `block ${i} (seed ${seed})`;
      const want = oracleOutcome(raw, firstTs);
      expect(want, label).not.toBe('refused');
      // Every bit as written (NaN payloads too), through both decoders; the oracle's batches and ids.
      const written = { ...(want as Outcome), values: b.values.map(key) };
      expect(nansAsOne(want), label).toEqual(nansAsOne(written));
      expect(nowOutcome(raw, firstTs), label).toEqual(written);
      const got = intoOutcome(raw, firstTs, out);
      if (got === 'declined') {
        expect(b.values.some((v) => typeof v !== 'number'), label).toBe(true);
        seen.declined++;
      } else {
        expect(got, label).toEqual(written);
        seen.read++;
      }
      const head = now.readPayloadHead(new ByteReader(raw), raw);
      if (head.nu < 4 * head.nc) seen.chains++;
      else seen.grouped++;
      for (let k = 0; k < 6; k++) {
        const bad = raw.slice(0, r() < 0.2 ? Math.floor(r() * raw.length) : raw.length);
        // Flip a bit, mostly in the column bodies (the end of the payload).
        if (bad.length > 0) {
          const at = r() < 0.6 ? bad.length - 1 - Math.floor(r() * Math.min(bad.length, 64)) : Math.floor(r() * bad.length);
          bad[at] = (bad[at] as number) ^ (1 << Math.floor(r() * 8));
        }
        // The oracle's outcome (its NaNs as NaNs); decodeBatches' bits exactly.
        const w = oracleOutcome(bad, firstTs);
        const d = nowOutcome(bad, firstTs);
        expect(nansAsOne(d), `${label} damage ${k}`).toEqual(nansAsOne(w));
        const g = intoOutcome(bad, firstTs, out);
        if (g === 'declined') continue;
        expect(g, `${label} damage ${k}`).toEqual(d);
        if (g === 'refused') seen.damagedRefused++;
        else seen.damagedRead++;
      }
    }
    // Each outcome occurs (a comparison that never reads, declines or refuses would be weak).
    expect(seen.read).toBeGreaterThan(80);
    expect(seen.chains).toBeGreaterThan(80);
    expect(seen.grouped).toBeGreaterThan(10);
    expect(seen.declined).toBeGreaterThan(3);
    expect(seen.damagedRead).toBeGreaterThan(40);
    expect(seen.damagedRefused).toBeGreaterThan(40);
  });

  it('reads varints of every length up to the last byte of the payload', () => {
    const out = now.newNumberBatches();
    // One path a batch, one value each: every column's only varint, the last at the payload's end.
    for (const digits of [0, 1, 2, 4, 6, 7, 9]) {
      for (const magnitude of [0, 1, 63, 64, 8191, 8192, 1_048_575, 1_048_576, 2 ** 30, 2 ** 45, 2 ** 50]) {
        for (const sign of [1, -1]) {
          const v = (sign * magnitude) / 10 ** digits;
          const b: Block = { ts: [1, 2, 3], counts: [1, 1, 1], ids: [5, 6, 7], values: [0.5, -1.25, v] };
          const raw = encode(b);
          const want = oracleOutcome(raw, 1);
          expect(intoOutcome(raw, 1, out), `${v}`).toEqual(want);
          expect(nowOutcome(raw, 1), `${v}`).toEqual(want);
          expect((want as Outcome).values[2]).toBe(key(v));
        }
      }
    }
  });
});
