/**
 * Values at the limits through a cluster's merged reads (docs/cluster.md): values of exactly
 * valueDepthMax levels and the largest string and bytes one NDJSON line takes, held by two
 * shards (real servers over their own archives), come back equal from a front node's merged
 * /history (NDJSON, CSV, Parquet read by pyarrow), /state and merged sessions (JSON and
 * msgpack frames, through the SDK): through shard batch records (server/cluster/
 * shard-batches.ts) and the shards' JSON answers.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatTs } from '../protocol/time.js';
import { valueFromJson } from '../protocol/value-json.js';
import type { Update, Value } from '../protocol/value.js';
import { deepUpdates, largestValues } from './helpers/limit-values.js';
import { frontNode } from './helpers/merge-cluster.js';
import { startServer, type TestServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { expectAllSame, readOutputs } from './helpers/value-outputs.js';
import { valueDiff } from './helpers/values.js';

const run = promisify(execFile);
const T0_US = 1_763_000_000_000_000;
const BIG = largestValues(T0_US + 1, '/s/str', '/b/bytes');
/** [prefix, ts, updates, shard]: one batch each, under prefixes of their own, over two shards. */
const BATCHES: Array<[string, number, Update[], number]> = [
  ['/d', T0_US, deepUpdates('/d'), 0],
  ['/s', T0_US + 1, [BIG.str], 0],
  ['/b', T0_US + 2, [BIG.bytes], 1],
];

/** The Parquet file's rows by pyarrow: path -> value (the kind's column). */
const PARQUET_PY = String.raw`
import json, sys
import pyarrow.parquet as pq
t = pq.ParquetFile(sys.argv[1]).read()
cols = [t.column(n).to_pylist() for n in ['path', 'kind', 'str', 'bytes', 'json']]
for p, kind, s, by, j in zip(*cols):
    sys.stdout.write(json.dumps({'path': p, 'kind': kind, 'str': s, 'bytes': None if by is None else bytes(by).hex(), 'json': j}) + '\n')
`;

describe('values at the limits through merged reads', () => {
  let shards: TestServer[];
  let front: TestServer;
  beforeAll(async () => {
    shards = await Promise.all([0, 1].map((k) => startServer(BATCHES.filter((b) => b[3] === k).map(([, ts, updates]) => ({ ts, updates })))));
    front = await frontNode(shards.map((s, i) => ({ id: `s${i}`, url: s.url })));
  }, 60_000);
  afterAll(async () => {
    await front?.close();
    for (const s of shards ?? []) await s.close();
  });

  it('/history NDJSON and CSV, /state and merged sessions (JSON, msgpack) give them back equal', async () => {
    for (const [prefix, ts, updates] of BATCHES) expectAllSame(updates, await readOutputs(front.url, prefix, ts));
  }, 120_000);

  it('merged /history Parquet gives them back equal (read by pyarrow)', async () => {
    const file = join(await tmpDir('tapedeck-s12-cluster-'), 'h.parquet');
    const res = await request(`${front.url}/api/v1/history?glob=${encodeURIComponent('/**')}&from=${formatTs(T0_US)}&format=parquet`);
    expect(res.statusCode).toBe(200);
    await writeFile(file, Buffer.from(await res.body.arrayBuffer()));
    const { stdout } = await run('python3', ['-c', PARQUET_PY, file], { maxBuffer: 512 * 1024 * 1024 });
    const got = new Map<string, unknown>();
    for (const l of stdout.split('\n').filter((x) => x !== '')) {
      const r = JSON.parse(l) as { path: string; kind: string; str: string | null; bytes: string | null; json: string | null };
      got.set(r.path, r.kind === 'string' ? r.str : r.kind === 'bytes' ? new Uint8Array(Buffer.from(r.bytes as string, 'hex')) : valueFromJson(JSON.parse(r.json as string), r.path));
    }
    const want = BATCHES.flatMap((b) => b[2]);
    expect([...got.keys()].sort()).toEqual(want.map((u) => u[0]).sort());
    for (const [p, v] of want) {
      const d = valueDiff(v as Value, got.get(p));
      if (d) throw new Error(`merged parquet, ${p}: ${d}`);
    }
  }, 120_000);
});

describe('a shard\'s longest NDJSON history line through a merged read', () => {
  // 12 M control characters: a 12 MB string a shard records (through the Kafka source's
  // parts, up to batchBytesMax a batch) and writes as a 72 M-character NDJSON line (each as
  // `\u0001`). clusterShardLineCharsMax was 64 Mi characters: the merged /history answered
  // 503 TPD_CLUSTER_UNAVAILABLE ('a shard sent a line over ...') for a value the shard
  // itself gives back.
  const wide = '\u0001'.repeat(12_000_000);
  let shards: TestServer[];
  let front: TestServer;
  beforeAll(async () => {
    shards = await Promise.all([
      startServer([{ ts: T0_US, updates: [['/w/ctl', wide]] }]),
      startServer([{ ts: T0_US + 1, updates: [['/w/n', 1]] }]),
    ]);
    front = await frontNode(shards.map((s, i) => ({ id: `s${i}`, url: s.url })));
  }, 60_000);
  afterAll(async () => {
    await front?.close();
    for (const s of shards ?? []) await s.close();
  });

  it('comes back whole from the merged /history (NDJSON)', async () => {
    const res = await request(`${front.url}/api/v1/history?glob=${encodeURIComponent('/w/**')}&from=${formatTs(T0_US)}`);
    const text = await res.body.text();
    expect(res.statusCode, text.slice(0, 300)).toBe(200);
    const lines = text.split('\n').filter((l) => l !== '');
    expect(lines.length).toBe(2);
    const first = JSON.parse(lines[0] as string) as { updates: Record<string, unknown> };
    expect(first.updates['/w/ctl'] === wide).toBe(true);
  }, 120_000);
});
