/**
 * /api/v1/history?format=parquet read back in-process (hyparquet, its strings decoded keeping
 * a leading U+FEFF: its default decoder drops it, which is the reader's doing, not the
 * file's) against what was pushed: each row's `kind` names the one column set, and that
 * column holds the value exactly (docs/values.md "Parquet"): -0 and subnormals in `num`,
 * bigints in `int` within INT64 and as `{"$bigint"}` in `json` beyond, strings with a lone
 * surrogate in `json`, bytes in `bytes`, a leading U+FEFF kept, NUL kept; `ts` the µs.
 */
import { parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { formatTs } from '../protocol/time.js';
import { type Update, type Value } from '../protocol/value.js';
import { parseJsonValueText } from '../protocol/value-json.js';
import { nested } from './helpers/limit-values.js';
import { recordingServerEach, type RecordingServer } from './helpers/recording-server.js';
import { msgpackBatch, openIngestWs, sendIngestWs } from './helpers/value-outputs.js';
import { obj, valueDiff } from './helpers/values.js';

let srv: RecordingServer;
recordingServerEach((s) => (srv = s));

const T0 = 1_763_000_000_000_000;
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const VALUES: Array<[string, Value, string]> = [
  ['negzero', -0, 'number'], ['sub', 5e-324, 'number'], ['ninf', -Infinity, 'number'], ['inf', Infinity, 'number'], ['max', Number.MAX_VALUE, 'number'],
  ['safe', 2 ** 53 - 1, 'number'], ['twoP60', 2 ** 60, 'number'],
  ['big53', 2n ** 53n + 1n, 'bigint'], ['i64max', 2n ** 63n - 1n, 'bigint'], ['i64min', -(2n ** 63n), 'bigint'], ['u64', 2n ** 64n - 1n, 'json'], ['huge', -(10n ** 100n), 'json'],
  ['empty', '', 'string'], ['bom', '\ufeff', 'string'], ['bomlong', `\ufeff${'x'.repeat(200)}`, 'string'], ['nul', 'a\u0000b', 'string'], ['numlike', '-0', 'string'],
  ['lone', '\ud800', 'json'], ['lonebom', '\ufeff\udc00', 'json'],
  ['bytes', Uint8Array.of(0, 0xef, 0xbb, 0xbf, 255), 'bytes'], ['nobytes', new Uint8Array(0), 'bytes'],
  ['t', true, 'bool'], ['f', false, 'bool'], ['null', null, 'null'],
  ['obj', obj([['__proto__', [NaN, -0]], ['$num', '\ufeff']]), 'json'], ['arr', [], 'json'], ['deep', nested(64, 2n ** 70n), 'json'],
];

describe('audit17: Parquet history', () => {
  it('every row holds exactly the value pushed, in the column its kind names', async () => {
    const updates: Update[] = VALUES.map(([k, v]) => [`/pq/${k}`, v]);
    const ws = await openIngestWs(srv.url);
    expect(await sendIngestWs(ws, msgpackBatch(T0, updates))).toMatchObject({ accepted_updates: updates.length, rejected_lines: 0 });
    ws.close();
    const res = await fetch(`${srv.url}/api/v1/history?glob=/pq/**&from=${formatTs(T0)}&to=${formatTs(T0)}&format=parquet`);
    expect(res.status).toBe(200);
    const file = await res.arrayBuffer();
    const rows = (await parquetReadObjects({
      file,
      parsers: { stringFromBytes: (b: Uint8Array | undefined) => (b === undefined ? undefined : strict.decode(b)), timestampFromMicroseconds: (us: bigint) => us } as never,
      utf8: false,
    })) as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.path)).toEqual(updates.map((u) => u[0]));
    const cols = ['bool', 'num', 'int', 'str', 'bytes', 'json'];
    rows.forEach((r, i) => {
      const [k, want, kind] = VALUES[i] as [string, Value, string];
      expect(r.kind, k).toBe(kind);
      const set = cols.filter((c) => r[c] !== null && r[c] !== undefined);
      const col = { number: 'num', bigint: 'int', string: 'str', bytes: 'bytes', json: 'json', bool: 'bool', null: undefined }[kind];
      expect(set, k).toEqual(col ? [col] : []);
      expect(r.ts, k).toBe(BigInt(T0));
      let got: unknown = col === undefined ? null : r[col];
      if (kind === 'json') got = parseJsonValueText(got as string, k);
      if (kind === 'bigint') got = BigInt(got as bigint);
      const d = valueDiff(want, got);
      if (d) throw new Error(`${k}: ${d}`);
    });
  });
});
