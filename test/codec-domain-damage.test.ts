/**
 * The converse of the writer's domain: a payload no writer made (damaged, or a frame written
 * so on purpose under a matching CRC32C) is refused with TPD_CORRUPT_BLOCK by every reader,
 * or read, but never another error, a hang or an allocation out of proportion to its bytes;
 * and any damage to a frame or a sidecar chunk is caught by its checksum.
 *
 * A head claiming more updates than its lists hold (nb x nc of them, as a PACKED column of
 * a linear series may) made readers allocate for them before reading the lists: a 15-byte
 * payload cost 13 GB and 14 s before its refusal, and past 2^32 updates the refusal was a
 * RangeError (codec/payload-head.ts checkUpdateCount, nb + nc within the payload's bytes).
 *
 * Seeded (printed; TPD_DAMAGE_DOMAIN_SEED replays).
 */
import { describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import { batchesAtOrBefore, readBatchTimes } from '../storage/codec/batch-times.js';
import { BlockType, encodeFrame, openFrame } from '../storage/codec/frame.js';
import { decodeBatches, decodeBatchesInto, decodeBatchesSelected, encodeBatches, newNumberBatches } from '../storage/codec/payload.js';
import { PAYLOAD_UNDER_A_BIT_UPDATES_MAX } from '../storage/codec/payload-head.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { ColumnBatchesBuilder } from '../storage/column-batches.js';
import { ColumnBlockReader } from '../storage/column-block.js';
import { seekHead } from '../storage/seek-head.js';
import { decodeChunk, encodeChunk } from '../storage/series-index/chunk.js';
import type { Value } from '../protocol/value.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const SEED = scheduleSeed('TPD_DAMAGE_DOMAIN_SEED', 'codec-domain-damage');
const PATHS = 64;

/** Every reader of a payload, each run alone: 'read', or the code of what it threw (anything else fails the test). */
function readers(raw: Uint8Array, nb: number): [string, () => unknown][] {
  return [
    ['decodeBatches', () => decodeBatches(raw, 0)],
    ['decodeBatchesSelected', () => decodeBatchesSelected(raw, 0, (id) => id % 2 === 0)],
    ['decodeBatchesInto', () => decodeBatchesInto(raw, 0, newNumberBatches())],
    ['ColumnBlockReader', () => new ColumnBlockReader().decode(raw, 0, null, PATHS)],
    ['ColumnBlockReader to 1', () => new ColumnBlockReader({ floats: true }).decode(raw, 0, null, PATHS, 1, 1)],
    ['ColumnBatchesBuilder', () => new ColumnBatchesBuilder().fill(raw, 0, nb, PATHS, 0, { keep: null, dropEmpty: false })],
    ['ColumnBatchesBuilder (column reader)', () => new ColumnBatchesBuilder({ into: false }).fill(raw, 0, nb, PATHS, 0, { keep: null, dropEmpty: false })],
    ['readBatchTimes', () => readBatchTimes(raw, 0)],
    ['batchesAtOrBefore', () => batchesAtOrBefore(raw, 0, nb, 1e6)],
  ];
}

function refusedOrRead(raw: Uint8Array, nb: number, what: string): void {
  for (const [name, read] of readers(raw, nb)) {
    const before = process.memoryUsage().arrayBuffers;
    try {
      read();
    } catch (err) {
      if (!isTapedeckError(err) || err.code !== 'TPD_CORRUPT_BLOCK') throw new Error(`${what}, ${name}: threw ${String(err)} (seed ${SEED})`);
    }
    // Scratch grows with the largest block read (a few MB here), never with what a head claims.
    const grown = process.memoryUsage().arrayBuffers - before;
    if (grown > 64 * 1024 * 1024) throw new Error(`${what}, ${name}: ${grown} bytes allocated for a payload of ${raw.length} (seed ${SEED})`);
  }
}

function payloadHead(nb: number, nu: number, nc: number, rest: Uint8Array): Uint8Array {
  const w = new ByteWriter(64);
  w.u8(0);
  w.u8(2);
  w.uvar(nb);
  w.uvar(nu);
  w.uvar(nc);
  w.bytes(rest);
  return w.finish();
}

/** A small block of numbers or values, uniform or ragged, of short or long columns. */
function block(r: () => number): { raw: Uint8Array; nb: number; nu: number } {
  const nb = 1 + Math.floor(r() * 40);
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const values: Value[] = [];
  const paths = 1 + Math.floor(r() * 6);
  const uniform = r() < 0.5;
  const numbers = r() < 0.7;
  for (let b = 0; b < nb; b++) {
    ts.push(1000 + b * (1 + Math.floor(r() * 3)));
    let n = 0;
    for (let p = 0; p < paths; p++) {
      if (!uniform && r() < 0.4) continue;
      ids.push(p * 7);
      const x = r();
      values.push(numbers || x < 0.5 ? (x < 0.3 ? Math.floor(r() * 100) / 10 : x < 0.6 ? b * 3 + p : x < 0.8 ? r() * 1e6 : NaN) : x < 0.75 ? 'ok' : null);
      n++;
    }
    counts.push(n);
  }
  const raw = encodeBatches({ ts, counts, ids, values, batchCount: nb, updateCount: values.length }, new ByteWriter(64)).slice();
  return { raw, nb, nu: values.length };
}

describe('payloads no writer made', () => {
  it('are refused before anything is allocated for updates their lists do not hold', () => {
    const zeros = (n: number): Uint8Array => new Uint8Array(n);
    // 15 bytes claiming 2^30 updates and columns; 2^33 (a RangeError before); nb x nc within the bytes, lists of nothing.
    refusedOrRead(payloadHead(1, 2 ** 30, 2 ** 30, zeros(10)), 1, 'nc past the bytes');
    refusedOrRead(payloadHead(1, 2 ** 33, 2 ** 33, zeros(4)), 1, 'counts past 2^32');
    refusedOrRead(payloadHead(32_000, 1e9, 32_000, zeros(65_536)), 32_000, 'nb x nc updates in 64 KB of empty lists');
    // The lists are read: one listed batch of 2 updates, then "same as previous" ones, one short of what the head claims.
    const w = new ByteWriter(64);
    const nb = 3000;
    for (let i = 0; i < nb; i++) w.u8(0); // times
    w.u8(0); // column 0: path 0
    w.u8(2 * 2); // a list of two updates
    w.u8(2);
    w.u8(0);
    for (let i = 1; i < nb; i++) w.u8(2 * 2 + 1);
    refusedOrRead(payloadHead(nb, 2 * nb + 1, 1, w.finish()), nb, 'lists one short');
  });

  it('are refused when repeated lists claim more updates than any block the writer makes', () => {
    // One path listed n times a batch, nb batches, one constant value: the writer's own
    // encoding ("same as previous" lists, a PACKED column of no bits) takes ~3 bytes a batch.
    // Past 2^21 updates no writer made it (a block holds at most blockUpdatesTarget +
    // batchUpdatesMax); before the bound, 150 KB of it decoded to 10^9 updates.
    expect(STORAGE_LIMITS.blockUpdatesTarget + STORAGE_LIMITS.batchUpdatesMax).toBeLessThan(PAYLOAD_UNDER_A_BIT_UPDATES_MAX);
    const n = 2000;
    const made = (nb: number): Uint8Array =>
      encodeBatches(
        { ts: Array.from({ length: nb }, (_, i) => 1000 + i), counts: new Array<number>(nb).fill(n), ids: new Int32Array(nb * n), values: new Array<Value>(nb * n).fill(5), batchCount: nb, updateCount: nb * n },
        new ByteWriter(64),
      ).slice();
    const under = made(1000); // 2 000 000 updates in about 5 KB: read, every update
    expect(under.length * 8).toBeLessThan(2_000_000);
    const read = decodeBatches(under, 0);
    expect(read.counts.reduce((a, c) => a + c, 0)).toBe(2_000_000);
    expect(read.values[1_999_999]).toBe(5);
    const over = made(1600); // 3 200 000 updates in about 7 KB
    for (const [name, reader] of readers(over, 1600)) {
      let code: string | undefined;
      try {
        reader();
      } catch (err) {
        code = isTapedeckError(err) ? err.code : String(err);
      }
      expect(code, name).toBe('TPD_CORRUPT_BLOCK');
    }
  });

  it('are refused with TPD_CORRUPT_BLOCK or read by every reader when damaged anywhere, never anything else', () => {
    const r = rng(SEED);
    for (let round = 0; round < 150; round++) {
      const { raw, nb } = block(r);
      for (let d = 0; d < 12; d++) {
        const bad = raw.slice();
        const kind = r();
        let damaged: Uint8Array = bad;
        if (kind < 0.5) {
          const at = Math.floor(r() * bad.length);
          bad[at] = (bad[at] as number) ^ (1 << Math.floor(r() * 8));
        } else if (kind < 0.7) damaged = bad.subarray(0, Math.floor(r() * bad.length));
        else if (kind < 0.85) {
          const at = Math.floor(r() * bad.length);
          bad[at] = r() < 0.5 ? 0xff : 0x80;
        } else {
          // A head whose counts are the largest its other checks allow.
          const at = 2 + Math.floor(r() * 3);
          bad[at] = 0xff;
        }
        refusedOrRead(damaged, nb, `round ${round} damage ${d}`);
      }
    }
  });

  it('are caught by the frame checksum and the sidecar chunk checksum wherever a bit flips', () => {
    const r = rng(SEED + 1);
    for (let round = 0; round < 30; round++) {
      const { raw, nb, nu } = block(r);
      const meta = { type: BlockType.DELTA, firstTs: 1000, lastTs: 1000 + nb, batches: nb, updates: nu };
      const frame = encodeFrame(meta, raw);
      for (let bit = 0; bit < frame.length * 8; bit += 1 + Math.floor(r() * 5)) {
        if (bit >> 3 >= 44 && bit >> 3 < 48) continue; // the header's padding: outside the CRC32C, checked by verify, ignored by readers
        const bad = frame.slice();
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
        let code = 'read';
        try {
          openFrame(bad, 'test');
        } catch (err) {
          code = isTapedeckError(err) ? err.code : String(err);
        }
        expect(code, `frame bit ${bit}`).toBe('TPD_CORRUPT_BLOCK');
        expect(seekHead(bad, { offset: 0, frameBytes: frame.length, ...meta }), `seek head, frame bit ${bit}`).toBeUndefined();
      }
      const n = 1 + Math.floor(r() * 50);
      const ts = Float64Array.from({ length: n }, (_, i) => 1000 + i * (r() < 0.8 ? 10 : 7));
      const vals = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? i / 10 : r()));
      const w = new ByteWriter(64);
      encodeChunk(w, ts, vals, Uint32Array.from(vals.keys()), 0, n, { id: 0, slice: 0 });
      const chunk = w.finish();
      for (let bit = 0; bit < chunk.length * 8; bit++) {
        const bad = chunk.slice();
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
        let code = 'read';
        try {
          decodeChunk(bad, n, ts[0] as number, ts[n - 1] as number, { id: 0, slice: 0 });
        } catch (err) {
          code = isTapedeckError(err) ? err.code : String(err);
        }
        expect(code, `chunk bit ${bit}`).toBe('TPD_CORRUPT_BLOCK');
      }
    }
  });
});
