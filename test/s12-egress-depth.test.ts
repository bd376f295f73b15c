/**
 * Values at the limits through every output of a server and of the CLI (docs/values.md):
 * values of exactly valueDepthMax levels around hostile scalars, and the largest string and
 * bytes one NDJSON line takes (ingestLineBytesMax), recorded through ingest, come back equal
 * from /history NDJSON, CSV and Parquet, /state, /diff, session frames JSON and msgpack, and
 * `tapedeck export` (NDJSON, CSV, Parquet) and `tapedeck inspect --at`. The Kafka sink is
 * test/s12-egress-depth-kafka.test.ts; cluster shard records test/audit11-contract-shard.test.ts.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatTs } from '../protocol/time.js';
import { valueFromCsvCell, valueFromJson, valueToJson } from '../protocol/value-json.js';
import type { Update, Value } from '../protocol/value.js';
import { tapedeckArgs } from './helpers/built.js';
import { deepUpdates, largestValues, ndjsonLine } from './helpers/limit-values.js';
import { recordingServer } from './helpers/recording-server.js';
import { tmpDir } from './helpers/tmp.js';
import { csvRows, expectAllSame, postNdjson, readOutputs } from './helpers/value-outputs.js';
import { valueDiff } from './helpers/values.js';

const run = promisify(execFile);
const T0_US = 1_763_000_000_000_000;
const BIG = largestValues(T0_US + 1, '/s/str', '/b/bytes');
/** One batch each (a line holds one), under prefixes of their own: [prefix, ts, updates]. */
const BATCHES: Array<[string, number, Update[]]> = [
  ['/d', T0_US, deepUpdates('/d')],
  ['/s', T0_US + 1, [BIG.str]],
  ['/b', T0_US + 2, [BIG.bytes]],
];
const ALL = BATCHES.flatMap((b) => b[2]);

/** Prints a Parquet file's rows as JSON lines: path, kind, then the value columns (bytes as hex, INT64 as text). */
const PARQUET_PY = String.raw`
import json, sys
import pyarrow.parquet as pq
t = pq.ParquetFile(sys.argv[1]).read()
cols = [t.column(n).to_pylist() for n in ['path', 'kind', 'bool', 'num', 'int', 'str', 'bytes', 'json']]
for p, kind, b, n, i, s, by, j in zip(*cols):
    sys.stdout.write(json.dumps({'path': p, 'kind': kind, 'bool': b, 'num': n, 'int': None if i is None else str(i), 'str': s, 'bytes': None if by is None else bytes(by).hex(), 'json': j}) + '\n')
`;

interface ParquetRow { path: string; kind: string; bool: boolean | null; num: number | null; int: string | null; str: string | null; bytes: string | null; json: string | null }

/** The values of a Parquet history file, read by pyarrow: path -> value. */
async function parquetValues(file: string): Promise<Map<string, unknown>> {
  const { stdout } = await run('python3', ['-c', PARQUET_PY, file], { maxBuffer: 512 * 1024 * 1024 });
  const out = new Map<string, unknown>();
  for (const l of stdout.split('\n').filter((x) => x !== '')) {
    const r = JSON.parse(l) as ParquetRow;
    const v = r.kind === 'string' ? r.str : r.kind === 'bytes' ? new Uint8Array(Buffer.from(r.bytes as string, 'hex')) : r.kind === 'json' ? valueFromJson(JSON.parse(r.json as string), r.path) : r.kind === 'bigint' ? BigInt(r.int as string) : r.kind === 'bool' ? r.bool : r.num;
    out.set(r.path, v);
  }
  return out;
}

/** NDJSON history text: path -> value. */
function ndjsonValues(text: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const l of text.split('\n').filter((x) => x !== '')) {
    const b = JSON.parse(l) as { updates: Record<string, unknown> };
    for (const [p, j] of Object.entries(b.updates)) out.set(p, valueFromJson(j, p));
  }
  return out;
}

/** CSV history text: path -> value. */
function csvValues(text: string): Map<string, unknown> {
  return new Map(csvRows(text).slice(1).map((r) => [r[2] as string, valueFromCsvCell(r[3] as string, r[2] as string)]));
}

function expectEqual(want: readonly Update[], got: Map<string, unknown>, where: string): void {
  expect([...got.keys()].sort(), where).toEqual(want.map((u) => u[0]).sort());
  for (const [p, v] of want) {
    const d = valueDiff(v as Value, got.get(p));
    if (d) throw new Error(`${where}, ${p}: ${d}`);
  }
}

describe('the JSON form of bytes', () => {
  it('the JSON form reads the largest bytes back, and still refuses base64 that is not padded base64', () => {
    expect(valueDiff(BIG.bytes[1], valueFromJson(valueToJson(BIG.bytes[1]), '/b'))).toBeUndefined();
    for (const bad of ['A', 'A=', 'AA=', 'AA=A', '====', 'A===', 'AAA==', 'AAAA=', 'AA==AAAA', 'AA A', 'AA-_', 'AAAAA===']) {
      expect(() => valueFromJson({ $bytes: bad }, '/b'), bad).toThrow(/padded base64/);
    }
    for (const good of ['', 'AA==', 'AAA=', 'AAAA', 'AB+/AA==']) expect(valueFromJson({ $bytes: good }, '/b'), good).toBeInstanceOf(Uint8Array);
  });
});

/** A recording server (its archive removed after the current test) holding BATCHES, each pushed as an NDJSON line. */
async function recorded(): Promise<Awaited<ReturnType<typeof recordingServer>>> {
  const srv = await recordingServer();
  for (const [prefix, ts, updates] of BATCHES) {
    const r = await postNdjson(srv.url, ndjsonLine(ts, updates));
    expect(r.json, prefix).toMatchObject({ accepted_lines: 1, rejected_lines: 0 });
  }
  return srv;
}

describe('values at the limits through every output', () => {
  let srv: Awaited<ReturnType<typeof recordingServer>>;
  beforeEach(async () => {
    srv = await recorded();
  }, 60_000);
  afterEach(async () => {
    await srv.close();
  });

  it('/history NDJSON and CSV, /state and session frames (JSON, msgpack) give them back equal', async () => {
    for (const [prefix, ts, updates] of BATCHES) expectAllSame(updates, await readOutputs(srv.url, prefix, ts));
  }, 120_000);

  it('/history Parquet gives them back equal (read by pyarrow)', async () => {
    const dir = await tmpDir('tapedeck-s12-parquet-');
    const file = join(dir, 'h.parquet');
    const res = await request(`${srv.url}/api/v1/history?glob=${encodeURIComponent('/**')}&from=${formatTs(T0_US)}&format=parquet`);
    expect(res.statusCode).toBe(200);
    await writeFile(file, Buffer.from(await res.body.arrayBuffer()));
    expectEqual(ALL, await parquetValues(file), 'history parquet');
  }, 120_000);

  it('/diff gives them back equal as the values at its end', async () => {
    const res = await request(`${srv.url}/api/v1/diff?start=${formatTs(T0_US - 1)}&end=${formatTs(T0_US + 2)}&glob=${encodeURIComponent('/**')}`);
    const body = await res.body.text();
    expect(res.statusCode, body.slice(0, 300)).toBe(200);
    const answer = JSON.parse(body) as { paths: Array<{ path: string; end?: unknown }> };
    expectEqual(ALL, new Map(answer.paths.map((d) => [d.path, valueFromJson(d.end, d.path)])), 'diff');
  }, 60_000);

  it('tapedeck export (NDJSON, CSV, Parquet) and inspect --at give them back equal', async () => {
    const out = await tmpDir('tapedeck-s12-export-');
    for (const format of ['ndjson', 'csv', 'parquet'] as const) {
      const file = join(out, `h.${format}`);
      await run(process.execPath, tapedeckArgs('export', '--archive', srv.dir, '--from', formatTs(T0_US), '--format', format, '--out', file), { maxBuffer: 64 * 1024 * 1024 });
      const got = format === 'parquet' ? await parquetValues(file) : format === 'csv' ? csvValues(await readFile(file, 'utf8')) : ndjsonValues(await readFile(file, 'utf8'));
      expectEqual(ALL, got, `export ${format}`);
    }
    const { stdout } = await run(process.execPath, tapedeckArgs('inspect', srv.dir, '--json', '--at', formatTs(T0_US + 2)), { maxBuffer: 512 * 1024 * 1024 });
    const values = (JSON.parse(stdout) as { stateAt: { values: Record<string, unknown> } }).stateAt.values;
    expectEqual(ALL, new Map(Object.entries(values).map(([p, j]) => [p, valueFromJson(j, p)])), 'inspect --at');
  }, 180_000);
});
