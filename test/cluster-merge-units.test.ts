/**
 * The pure parts of merged reads (docs/cluster.md, "Merged reads"): the k-way merge and its tie rule,
 * the line and CSV row readers, the shard batches wire against malformed input, and how
 * paths and states merge.
 */
import { describe, expect, it } from 'vitest';
import { csvRows, lines, mergeByTs, type Keyed } from '../server/cluster/merge-records.js';
import { decodeShardBatches } from '../server/cluster/shard-batches.js';
import { mergePaths, mergeStates, mergedHorizon, sharedPaths } from '../server/cluster/merge-answers.js';
import { encodeMsgpack } from '../protocol/value-msgpack.js';
import type { Value } from '../protocol/value.js';
import { plain } from './helpers/replay.js';

async function* from<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const keyed = (xs: Array<[number, string]>): AsyncGenerator<Keyed<string>> => from(xs.map(([ts, item]) => ({ ts, item })));

function record(v: Value): Buffer {
  const body = encodeMsgpack(v);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

describe('mergeByTs', () => {
  it('orders by time, then by source, then in each source\'s order', async () => {
    const out = await all(mergeByTs([keyed([[1, 'a1'], [5, 'a5'], [5, 'a5b']]), keyed([[0, 'b0'], [5, 'b5']]), keyed([]), keyed([[5, 'c5'], [9, 'c9']])]));
    expect(out.map((m) => m.item)).toEqual(['b0', 'a1', 'a5', 'a5b', 'b5', 'c5', 'c9']);
  });

  it('refuses a source that goes back in time rather than merge it wrongly', async () => {
    await expect(all(mergeByTs([keyed([[5, 'x'], [4, 'y']]), keyed([[1, 'z']])]))).rejects.toMatchObject({ code: 'TPD_INTERNAL' });
  });

  it('merges many sources in order (a seeded random workload)', async () => {
    let seed = 42;
    const r = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const sources = Array.from({ length: 20 }, (_, s) => {
      let t = 0;
      return Array.from({ length: 200 }, (_, i) => [(t += Math.floor(r() * 3)), `${s}:${i}`] as [number, string]);
    });
    const out = await all(mergeByTs(sources.map((x) => keyed(x))));
    const expected = sources.flatMap((xs, s) => xs.map(([ts, item], i) => ({ ts, s, i, item }))).sort((a, b) => a.ts - b.ts || a.s - b.s || a.i - b.i);
    expect(out.map((m) => m.item)).toEqual(expected.map((e) => e.item));
  });
});

describe('line readers', () => {
  it('cuts lines across chunk borders and multi-byte characters', async () => {
    const text = Buffer.from('a\nbé\n\nlast');
    const chunks = [text.subarray(0, 3), text.subarray(3, 4), text.subarray(4)];
    expect(await all(lines(from(chunks), 100))).toEqual(['a', 'bé', '', 'last']);
  });

  it('keeps CSV rows whole when a quoted field holds line breaks', async () => {
    const csv = 'ts,time,path,value\n1,t,/a,"x\ny"\n2,t,/b,"say ""hi""\n"\n';
    expect(await all(csvRows(from([csv]), 100))).toEqual(['ts,time,path,value', '1,t,/a,"x\ny"', '2,t,/b,"say ""hi""\n"']);
  });

  it('refuses a line past its limit', async () => {
    await expect(all(lines(from(['x'.repeat(50)]), 10))).rejects.toMatchObject({ code: 'TPD_INTERNAL' });
  });
});

describe('the shard batches wire', () => {
  const idOf = (p: string): number => ({ '/a': 7, '/b': 8 })[p] ?? 99;

  it('maps announced path ids and keeps repeated updates of a path', async () => {
    const body = Buffer.concat([record([10, [3, 3], [1, 2], [3, '/a']]), record([11, [4, 3], [new Uint8Array([1]), null], [4, '/b']])]);
    const out = await all(decodeShardBatches(from([body.subarray(0, 5), body.subarray(5)]), 1000, idOf));
    expect(plain(out.map((b) => [b.ts, [...b.ids], b.values]))).toEqual([[10, [7, 7], [1, 2]], [11, [8, 7], [new Uint8Array([1]), null]]]);
  });

  it.each([
    ['a body cut inside a record', record([1, [], [], []]).subarray(0, 6)],
    ['a record over the limit', Buffer.from([0xff, 0xff, 0xff, 0xff])],
    ['a record of the wrong shape', record([1, 2])],
    ['ids and values of different lengths', record([1, [1], [], [1, '/a']])],
    ['an id never announced', record([1, [5], [0], []])],
    ['bytes that are not msgpack', Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from([0xc1])])],
  ])('refuses %s as a shard fault', async (_what, body) => {
    await expect(all(decodeShardBatches(from([body]), 1000, idOf))).rejects.toBeTruthy();
  });
});

describe('merging answers', () => {
  it('unions paths sorted; a truncated shard list makes the count an upper bound', () => {
    expect(mergePaths([{ paths: ['/b', '/a'], count: 2, truncated: false }, { paths: ['/c', '/a'], count: 2, truncated: false }], 10)).toEqual({ paths: ['/a', '/b', '/c'], count: 3, truncated: false });
    expect(mergePaths([{ paths: ['/b'], count: 5, truncated: true }, { paths: ['/c'], count: 1, truncated: false }], 10)).toEqual({ paths: ['/b', '/c'], count: 6, truncated: true });
    expect(mergePaths([{ paths: ['/b', '/a', '/c'], count: 3, truncated: false }], 2)).toEqual({ paths: ['/a', '/b'], count: 3, truncated: true });
  });

  it('takes per path the newest shard answer, ties to the shard later in id order', () => {
    const m = mergeStates([
      { index: 0, shard: 'a', horizonUs: 5, value: { ts: 5, values: { '/x': 1, '/y': 1 } } },
      { index: 2, shard: 'c', horizonUs: 3, value: { ts: 3, values: { '/x': 3 } } },
      { index: 1, shard: 'b', horizonUs: 5, value: { ts: 5, values: { '/y': 2, '/__proto__': 'p' } } },
    ]);
    expect(m.ts).toBe(5);
    expect(Object.keys(m.values)).toEqual(['/__proto__', '/x', '/y']);
    expect(m.values['/x']).toBe(1);
    expect(m.values['/y']).toBe(2);
    expect(Object.getOwnPropertyDescriptor(m.values, '/__proto__')?.value).toBe('p');
  });

  it('decides a path several shards hold by each shard\'s update time, then by the tie rule; unknown times lose', () => {
    const answers = [
      { index: 0, shard: 'a', horizonUs: 9, value: { ts: 9, values: { '/x': 'a', '/y': 'a', '/z': 'a', '/only-a': 1 } } },
      { index: 1, shard: 'b', horizonUs: 9, value: { ts: 9, values: { '/x': 'b', '/y': 'b', '/z': 'b' } } },
    ];
    expect(sharedPaths(answers)).toEqual(new Map([[0, ['/x', '/y', '/z']], [1, ['/x', '/y', '/z']]]));
    const times = new Map([[0, new Map<string, number | null>([['/x', 7], ['/y', 5], ['/z', 3]])], [1, new Map<string, number | null>([['/x', 4], ['/y', 5], ['/z', null]])]]);
    // Without the times both answers are of time 9: the later shard would take every path.
    expect(mergeStates(answers).values).toEqual({ '/only-a': 1, '/x': 'b', '/y': 'b', '/z': 'b' });
    expect(mergeStates(answers, times).values).toEqual({ '/only-a': 1, '/x': 'a', '/y': 'b', '/z': 'a' });
  });

  it('takes the slowest horizon; an empty shard constrains none', () => {
    expect(mergedHorizon([5, null, 3])).toBe(3);
    expect(mergedHorizon([null, null])).toBeNull();
  });
});
