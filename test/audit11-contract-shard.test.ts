/**
 * A cluster's merged sessions read a shard's batches as msgpack records (server/cluster/
 * shard-batches.ts): each value is written from its own depth, inside the record's list of
 * values. A value of valueDepthMax levels, which every door takes (docs/values.md), must
 * come through the record as it went in, not fault the shard as malformed.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { decodeShardBatches, encodeShardBatches } from '../server/cluster/shard-batches.js';
import { VALUE_DEPTH_MAX, type Value } from '../protocol/value.js';
import { tmpDir } from './helpers/tmp.js';
import { valueDiff } from './helpers/values.js';

function nested(levels: number, leaf: Value): Value {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { $a: v };
  return v;
}

describe('shard batch records', () => {
  it('carry values of valueDepthMax levels exactly', async () => {
    const dir = await tmpDir('tapedeck-audit11-shard-');
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    const t0 = 1_763_000_000_000_000;
    const values: Value[] = [nested(VALUE_DEPTH_MAX, NaN), nested(VALUE_DEPTH_MAX, new Uint8Array([1, 2])), nested(VALUE_DEPTH_MAX - 1, 2n ** 70n)];
    values.forEach((v, i) => a.writer!.append([[`/deep/${i}`, v]], t0 + i));
    await a.writer!.flush();
    try {
      const chunks = encodeShardBatches(a.cursor({}), () => a.paths, t0 + values.length);
      const paths: string[] = [];
      const got = new Map<string, Value>();
      for await (const b of decodeShardBatches(chunks, 1 << 24, (p) => paths.push(p) - 1)) {
        for (let k = b.from; k < b.to; k++) got.set(paths[b.ids[k] as number] as string, b.values[k] as Value);
      }
      values.forEach((v, i) => expect(valueDiff(v, got.get(`/deep/${i}`)), `/deep/${i}`).toBeUndefined());
    } finally {
      await a.close();
    }
  });
});
