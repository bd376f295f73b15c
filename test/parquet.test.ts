/**
 * Parquet export (server/history-parquet.ts): an archive of hostile values exported through
 * `tapedeck export --format parquet` and GET /api/v1/history?format=parquet, read back by two
 * independent readers (DuckDB and pyarrow, in python3: scripts/install-python-readers.sh)
 * and compared row for row with the archive's batches: numbers by their bits, bigints,
 * strings code unit for code unit, bytes, and nested values through the `json` column.
 * The batches are drawn by fast-check with a printed seed (FC_SEED replays).
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJsonValueText } from '../protocol/value-json.js';
import { canonicalInteger, type Batch, type Update, type Value } from '../protocol/value.js';
import { kindOf, parquetChunks } from '../server/history-parquet.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { tapedeckArgs } from './helpers/built.js';
import { startServer, type TestServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';
import { hostileUpdates, propertySeed, valueDiff } from './helpers/values.js';

const run = promisify(execFile);

/** Prints a Parquet file's rows as JSON: doubles as hex bits, INT64 as decimal text, bytes as hex. */
const READER_PY = String.raw`
import json, struct, sys
reader, path = sys.argv[1], sys.argv[2]
if reader == 'duckdb':
    import duckdb
    con = duckdb.connect()
    con.execute('SET threads = 1')
    rows = con.execute('SELECT epoch_us(ts), path, kind, bool, num, int, str, bytes, json FROM read_parquet(?)', [path]).fetchall()
    cols = list(zip(*rows)) if rows else [[] for _ in range(9)]
    meta = {}
else:
    import pyarrow as pa, pyarrow.parquet as pq
    f = pq.ParquetFile(path)
    t = f.read()
    cols = [t.column('ts').cast(pa.int64()).to_pylist()] + [t.column(n).to_pylist() for n in ['path', 'kind', 'bool', 'num', 'int', 'str', 'bytes', 'json']]
    md = f.metadata
    meta = {
        'schema': {n: str(t.schema.field(n).type) for n in t.schema.names},
        'rowGroups': [md.row_group(i).num_rows for i in range(md.num_row_groups)],
        'pathEncodings': sorted(set(e for i in range(md.num_row_groups) for e in md.row_group(i).column(1).encodings)),
    }
def num(x): return None if x is None else struct.pack('<d', x).hex()
def big(x): return None if x is None else str(x)
def hexb(x): return None if x is None else bytes(x).hex()
out = []
for ts, p, kind, b, n, i, s, by, j in zip(*cols):
    out.append([big(ts), p, kind, b, num(n), big(i), s, hexb(by), j])
print(json.dumps({'rows': out, 'meta': meta}))
`;

type Row = [ts: string, path: string, kind: string, bool: boolean | null, num: string | null, int: string | null, str: string | null, bytes: string | null, json: string | null];
interface ReadBack {
  rows: Row[];
  meta: { schema?: Record<string, string>; rowGroups?: number[]; pathEncodings?: string[] };
}

async function readParquet(reader: 'duckdb' | 'pyarrow', file: string): Promise<ReadBack> {
  const { stdout } = await run('python3', ['-c', READER_PY, reader, file], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout) as ReadBack;
}

/** The value a row holds: the column its `kind` names, and only that one set. */
function rowValue(r: Row): Value {
  const [, , kind, bool, num, int, str, bytes, json] = r;
  const set = [bool, num, int, str, bytes, json].filter((x) => x !== null).length;
  if (set !== (kind === 'null' ? 0 : 1)) throw new Error(`row of kind ${kind} has ${set} value columns set`);
  switch (kind) {
    case 'null':
      return null;
    case 'bool':
      return bool;
    case 'number':
      return Buffer.from(num as string, 'hex').readDoubleLE(0);
    case 'bigint':
      return canonicalInteger(BigInt(int as string));
    case 'string':
      return str;
    case 'bytes':
      return Uint8Array.from(Buffer.from(bytes as string, 'hex'));
    case 'json':
      return parseJsonValueText(json as string, r[1]);
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

/** Compares the rows with the batches' updates, in order; returns the first difference. */
function rowsDiff(batches: Batch[], rows: Row[]): string | undefined {
  const want: Array<[number, string, Value]> = batches.flatMap((b) => b.updates.map(([p, v]) => [b.ts, p, v] as [number, string, Value]));
  if (rows.length !== want.length) return `want ${want.length} rows, got ${rows.length}`;
  for (let i = 0; i < want.length; i++) {
    const [ts, path, v] = want[i] as [number, string, Value];
    const r = rows[i] as Row;
    if (r[0] !== String(ts) || r[1] !== path) return `row ${i}: want ${ts} ${path}, got ${r[0]} ${r[1]}`;
    if (r[2] !== kindOf(v)) return `row ${i} (${path}): want kind ${kindOf(v)}, got ${r[2]}`;
    const d = valueDiff(v, rowValue(r));
    if (d) return `row ${i} (${path}): ${d}`;
  }
  return undefined;
}

/** Values every run holds, whatever the seed: each kind and each edge of a column. */
const EDGES: Update[] = [
  ['/e/null', null],
  ['/e/true', true],
  ['/e/false', false],
  ['/e/nan', NaN],
  ['/e/neg0', -0],
  ['/e/inf', Infinity],
  ['/e/-inf', -Infinity],
  ['/e/tiny', 5e-324],
  ['/e/int64max', 2n ** 63n - 1n],
  ['/e/int64min', -(2n ** 63n)],
  ['/e/beyond', 2n ** 63n],
  ['/e/huge', -(2n ** 200n)],
  ['/e/empty', ''],
  ['/e/lone', 'a\ud800b'],
  ['/e/nul', 'x\0y'],
  ['/e/astral', '𝄞é'],
  ['/e/bytes', Uint8Array.from([0, 255, 0])],
  ['/e/nobytes', new Uint8Array(0)],
  ['/e/tag', { $num: 'NaN' }],
  ['/e/proto', JSON.parse('{"__proto__":[1,{"x":null}]}') as Value],
  ['/e/arr', [1, -0, NaN, 2n ** 70n, 'q\udc00', Uint8Array.from([1])]],
];

function hostileBatches(seed: number): Batch[] {
  const drawn = fc.sample(fc.array(hostileUpdates, { minLength: 20, maxLength: 40 }), { seed, numRuns: 1 })[0] as Update[][];
  const t0 = 1_700_000_000_000_000;
  return [EDGES, ...drawn].map((updates, i) => ({ ts: t0 + i * 1_000 + (i % 7), updates }));
}

async function cli(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(process.execPath, tapedeckArgs(...args));
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

describe('Parquet export', () => {
  it('carries every hostile value exactly through the CLI and HTTP, as DuckDB and pyarrow read it', async () => {
    const batches = hostileBatches(propertySeed('parquet export'));
    srv = await startServer(batches);
    const work = await tmpDir();
    const viaCli = join(work, 'cli.parquet');
    const exp = await cli('export', '--archive', srv.archive.dir, '--format', 'parquet', '--out', viaCli);
    expect(exp.stderr).toContain(`exported ${batches.length} batches to ${viaCli}`);
    expect(exp.code).toBe(0);

    const res = await fetch(`${srv.url}/api/v1/history?format=parquet`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    const viaHttp = join(work, 'http.parquet');
    await writeFile(viaHttp, Buffer.from(await res.arrayBuffer()));
    // One writer behind both doors: the same archive gives the same file.
    expect(Buffer.compare(await readFile(viaHttp), await readFile(viaCli))).toBe(0);

    for (const reader of ['duckdb', 'pyarrow'] as const) {
      const back = await readParquet(reader, viaCli);
      expect(rowsDiff(batches, back.rows), reader).toBeUndefined();
    }
  });

  it('declares ts as TIMESTAMP(MICROS, UTC) and dictionary-encodes path', async () => {
    srv = await startServer([{ ts: 1_000_001, updates: [['/a', 1], ['/b', 'x']] }, { ts: 2_000_002, updates: [['/a', 2]] }]);
    const file = join(await tmpDir(), 'h.parquet');
    await writeFile(file, Buffer.from(await (await fetch(`${srv.url}/api/v1/history?format=parquet`)).arrayBuffer()));
    const { meta, rows } = await readParquet('pyarrow', file);
    expect(meta.schema).toEqual({
      ts: 'timestamp[us, tz=UTC]',
      path: 'string',
      kind: 'string',
      bool: 'bool',
      num: 'double',
      int: 'int64',
      str: 'string',
      bytes: 'binary',
      json: 'string',
    });
    expect(meta.pathEncodings).toContain('RLE_DICTIONARY');
    expect(rows.map((r) => r[0])).toEqual(['1000001', '1000001', '2000002']);
  });

  it('answers a valid empty file for globs that match nothing, with the warning header', async () => {
    srv = await startServer([{ ts: 1_000, updates: [['/a', 1]] }]);
    const res = await fetch(`${srv.url}/api/v1/history?format=parquet&glob=/nope/*`);
    expect(res.status).toBe(200);
    expect(res.headers.get('tapedeck-warning')).toMatch(/^TPD_/);
    const file = join(await tmpDir(), 'empty.parquet');
    await writeFile(file, Buffer.from(await res.arrayBuffer()));
    for (const reader of ['duckdb', 'pyarrow'] as const) expect((await readParquet(reader, file)).rows).toEqual([]);
  });

  it('refuses a bad query before the first byte, as JSON, not as a broken file', async () => {
    srv = await startServer([{ ts: 1_000, updates: [['/a', 1]] }]);
    const res = await fetch(`${srv.url}/api/v1/history?format=parquet&from=2000&to=1000`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TPD_BAD_ARGUMENT');
    const bad = await fetch(`${srv.url}/api/v1/history?format=parquet&glob=%5B`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('TPD_BAD_GLOB');
  });

  it('bounds row groups by value bytes: big values split the file into several groups', async () => {
    const big = 'x'.repeat(Math.ceil(SERVER_LIMITS.parquetRowGroupValueBytesTarget / 2));
    const batches: Batch[] = [1, 2, 3, 4].map((i) => ({ ts: i * 1_000, updates: [[`/big/${i}`, big + i]] }));
    srv = await startServer(batches);
    const file = join(await tmpDir(), 'big.parquet');
    expect((await cli('export', '--archive', srv.archive.dir, '--format', 'parquet', '--out', file)).code).toBe(0);
    const back = await readParquet('pyarrow', file);
    expect(back.meta.rowGroups).toEqual([2, 2]);
    expect(rowsDiff(batches, back.rows)).toBeUndefined();
  });

  it('streams: the first row group is out before the last batch is read', async () => {
    let read = 0;
    let more = true;
    async function* endless(): AsyncGenerator<Batch> {
      // Enough small rows for one full group, then stop only when told.
      for (let i = 0; more; i++) {
        read++;
        yield { ts: i + 1, updates: [[`/p/${i % 10}`, i]] };
      }
    }
    const chunks = parquetChunks(endless());
    const first = await chunks.next();
    expect(first.done).toBe(false);
    expect(Buffer.from(first.value as Uint8Array).subarray(0, 4).toString()).toBe('PAR1');
    // The group was cut at its row bound, not at the end of the input.
    expect(read).toBe(SERVER_LIMITS.parquetRowGroupRowsMax);
    more = false;
    await chunks.return(undefined);
  });

  it('frees the stream when a client drops the download halfway, and keeps serving', async () => {
    const batches: Batch[] = Array.from({ length: 200 }, (_, i) => ({ ts: (i + 1) * 1_000, updates: [[`/s/${i % 5}`, 'y'.repeat(64 * 1024)]] }));
    srv = await startServer(batches);
    const server = srv.app.server;
    const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(sock, 'connect');
    sock.write('GET /api/v1/history?format=parquet HTTP/1.1\r\nHost: t\r\n\r\n');
    await once(sock, 'data');
    sock.destroy();
    const connections = (): Promise<number> => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    await until(async () => (await connections()) === 0, 10_000, 'the dropped download to be closed by the server');
    const again = await fetch(`${srv.url}/api/v1/history?format=parquet&glob=/s/0`);
    expect(again.status).toBe(200);
    const file = join(await tmpDir(), 'again.parquet');
    await writeFile(file, Buffer.from(await again.arrayBuffer()));
    expect((await readParquet('duckdb', file)).rows).toHaveLength(40);
  });

  it('refuses an unknown format on the CLI and over HTTP', async () => {
    srv = await startServer([{ ts: 1_000, updates: [['/a', 1]] }]);
    const out = join(await tmpDir(), 'x');
    const r = await cli('export', '--archive', srv.archive.dir, '--format', 'orc', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--format takes ndjson, csv, parquet');
    expect((await fetch(`${srv.url}/api/v1/history?format=orc`)).status).toBe(400);
  });
});
