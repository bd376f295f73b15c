/**
 * The replay path's msgpack batch frames (protocol/msgpack-batch-frame.ts, written with
 * MsgpackWriter.pairsOf) are the bytes of the general encoder (protocol/msgpack-frames.ts
 * encodeRawFrame, one pair() per update): hostile values, ids of every msgpack width and
 * beyond uint32, filters, empty batches, and fabric-like numbers at every int/float edge.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBatchFrame } from '../protocol/msgpack-batch-frame.js';
import { MsgpackWriter, type RawBatchView } from '../protocol/msgpack-frames.js';
import { encodeRawFrame } from './helpers/msgpack-frame-oracle.js';
import type { Value } from '../protocol/value.js';
import { hostileNumber, hostileValue, propertySeed } from './helpers/values.js';

/** Ids at every msgpack integer width, and numbers that are no uint32 (a plain array may hold them). */
const anyId = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  fc.constantFrom(127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40, -1, -33, 1.5, -0, NaN),
);

/** Numbers at the int32 and msgpack width edges, as replay sees them most. */
const edgeNumber = fc.oneof(
  hostileNumber,
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(-32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 0.1, 12.3, -0),
);

const update = fc.tuple(anyId, fc.oneof(hostileValue, edgeNumber, edgeNumber));

/** One block's ids and values, and batches as views into them. */
const frame = fc.array(update, { maxLength: 40 }).chain((us) => fc.tuple(
  fc.constant(us),
  fc.array(fc.tuple(fc.nat(us.length), fc.nat(us.length), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), { minLength: 1, maxLength: 4 }),
  fc.boolean(),
  fc.constantFrom<'none' | 'odd' | 'all' | 'nothing'>('none', 'odd', 'all', 'nothing'),
)).map(([us, cuts, typed, filter]) => {
  const plainIds = us.map((u) => u[0]);
  // A block's ids are a Uint32Array; a typed copy only where every id fits one.
  const ids: ArrayLike<number> = typed && plainIds.every((id) => id >>> 0 === id) ? Uint32Array.from(plainIds) : plainIds;
  const values: Value[] = us.map((u) => u[1]);
  const views: RawBatchView[] = cuts.map(([a, b, ts]) => ({ ts, ids, values, from: Math.min(a, b), to: Math.max(a, b) }));
  const match = filter === 'none' ? undefined : filter === 'odd' ? (id: number) => id % 2 === 1 : filter === 'all' ? () => true : () => false;
  return { views, match };
});

describe('msgpack batch frames of the replay path', () => {
  it('are byte for byte the general encoder\'s, on seeded hostile batches', () => {
    const seed = propertySeed('msgpack batch frames');
    const a = new MsgpackWriter();
    const b = new MsgpackWriter();
    fc.assert(
      fc.property(frame, ({ views, match }) => {
        expect(Buffer.from(encodeBatchFrame(a, views, match)).equals(Buffer.from(encodeRawFrame(b, views, match)))).toBe(true);
        expect(Buffer.from(encodeBatchFrame(a, views.slice(0, 1), match)).equals(Buffer.from(encodeRawFrame(b, views.slice(0, 1), match)))).toBe(true);
      }),
      { seed, numRuns: 2000 },
    );
  });

  it('are the general encoder\'s across the writer growing, for batches of thousands of updates', () => {
    // pairsOf keeps its own position and reserves room per pair: a block larger than the
    // writer's first buffer (64 KiB) makes it grow mid-batch, between fast and slow values.
    const n = 40_000;
    const ids = new Uint32Array(n);
    const values: Value[] = new Array<Value>(n);
    let x = 7;
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      ids[i] = x % 3 === 0 ? x : x % 70_000;
      values[i] = x % 11 === 0 ? 'str-' + 'é'.repeat(x % 50) : x % 13 === 0 ? null : x % 7 === 0 ? -(x % 100_000) : x % 5 === 0 ? (x % 4000) / 10 : x / 3;
    }
    const views = [{ ts: 1_763_000_000_000_000, ids, values, from: 0, to: n }, { ts: 1_763_000_001_000_000, ids, values, from: 5, to: 20_005 }];
    const got = encodeBatchFrame(new MsgpackWriter(), views, undefined);
    expect(got.length).toBeGreaterThan(64 * 1024);
    expect(Buffer.from(got).equals(Buffer.from(encodeRawFrame(new MsgpackWriter(), views, undefined)))).toBe(true);
  });
});
