import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../storage/codec/bytes.js';
import { decodeBatches } from '../storage/codec/payload.js';
import { encodeBatches } from '../storage/codec/payload-encode.js';

describe('encodeBatches after a block that threw', () => {
  it('encodes the next block as if the failed one had never been tried', () => {
    const w = new ByteWriter(1 << 12);
    // A block whose timestamps cannot be read: the encode fails after columns were assigned.
    const badTs = new Proxy([1, 2], { get: (t, k) => (k === 'length' ? 2 : k === '0' || k === '1' ? (() => { throw new Error('unreadable ts'); })() : Reflect.get(t, k)) });
    expect(() => encodeBatches({ ts: badTs as number[], counts: [1, 1], ids: Int32Array.of(5, 9), values: Float64Array.of(1, 2), batchCount: 2, updateCount: 2 }, w)).toThrow('unreadable ts');
    const raw = encodeBatches({ ts: [10], counts: [2], ids: Int32Array.of(9, 5), values: Float64Array.of(3, 4), batchCount: 1, updateCount: 2 }, w).slice();
    const d = decodeBatches(raw, 10);
    expect([...d.ids]).toEqual([9, 5]);
    expect([...d.values]).toEqual([3, 4]);
  });
});
