/**
 * Hostile values in through every push door (NDJSON POST, a pretty-printed application/json
 * POST, WebSocket NDJSON text, WebSocket msgpack) and out through every server output a
 * value is read from: /history NDJSON and CSV, /state, /diff (start and end values), raw
 * session frames in both formats and both layouts (`pairs`, `columns`), decoded by the one
 * client decoder, the SDK in both layouts, and `tapedeck inspect --at --json`. Every value
 * must come back identical; NaN payloads bit for bit wherever the wire is msgpack.
 * Random values are seeded (AUDIT17_SEED replays).
 */
import fc from 'fast-check';
import { request } from 'undici';
import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TapedeckClient } from '../clients/client/index.js';
import { inspectCommand } from '../clients/cli/inspect.js';
import { FrameDecoder } from '../protocol/frames.js';
import { formatTs } from '../protocol/time.js';
import { setOwn, VALUE_DEPTH_MAX, type Update } from '../protocol/value.js';
import { valueFromJson, valueToJson } from '../protocol/value-json.js';
import { FRAGILE_NANS } from './helpers/nan.js';
import { nested } from './helpers/limit-values.js';
import { recordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { bitsDiff, hostileUpdates, obj, valueDiff } from './helpers/values.js';
import { csvRows, getText, line, msgpackBatch, openIngestWs, query, sendIngestWs, sessionBatch } from './helpers/value-outputs.js';
import { valueFromCsvCell } from '../protocol/value-json.js';

const seed = scheduleSeed('AUDIT17_SEED', 'audit17-values-outputs');
const T0 = 1_763_000_000_000_000;

/** The fixed hostile set: every kind at its edges. */
function fixedUpdates(): Update[] {
  const nans = Array.from(FRAGILE_NANS);
  const u: Update[] = [
    ['/v/negzero', -0],
    ['/v/zero', 0],
    ['/v/nan', NaN],
    ['/v/inf', Infinity],
    ['/v/ninf', -Infinity],
    ['/v/subnormal', 5e-324],
    ['/v/nsubnormal', -5e-324],
    ['/v/maxdouble', Number.MAX_VALUE],
    ['/v/safe', Number.MAX_SAFE_INTEGER],
    ['/v/nsafe', -Number.MAX_SAFE_INTEGER],
    ['/v/2p53', 2 ** 53],
    ['/v/2p53p2', 2 ** 53 + 2],
    ['/v/big53p1', 2n ** 53n + 1n],
    ['/v/bigneg53p1', -(2n ** 53n) - 1n],
    ['/v/big64', 2n ** 64n],
    ['/v/big63m1', 2n ** 63n - 1n],
    ['/v/bigneg63', -(2n ** 63n)],
    ['/v/bighuge', 10n ** 300n + 7n],
    ['/v/1e21', 1e21],
    ['/v/frac', 0.1 + 0.2],
    ['/v/str/empty', ''],
    ['/v/str/numlike', '12'],
    ['/v/str/neg0', '-0'],
    ['/v/str/nan', 'NaN'],
    ['/v/str/date', '2024-05-01T12:00:00Z'],
    ['/v/str/true', 'true'],
    ['/v/str/null', 'null'],
    ['/v/str/nul', 'a\u0000b'],
    ['/v/str/controls', '\u0001\u001f\u007f\u0085\r\n\t\u2028\u2029\ufeff'],
    ['/v/str/lone', '\ud800'],
    ['/v/str/lonetail', 'x\udc00'],
    ['/v/str/swapped', '\udc00\ud800'],
    ['/v/str/astral', '𝄞é'],
    ['/v/str/quote', '"{[\\'],
    ['/v/str/long', 'ab\u00e9'.repeat(100_000)],
    ['/v/str/taglike', '{"$num":"NaN"}'],
    ['/v/bytes/empty', new Uint8Array(0)],
    ['/v/bytes/some', Uint8Array.of(0, 255, 1, 128)],
    ['/v/empty/obj', {}],
    ['/v/empty/arr', []],
    ['/v/obj/proto', obj([['__proto__', 1], ['constructor', 'x'], ['', null], ['10', 2], ['a', -0]])],
    ['/v/obj/tag', obj([['$num', 'NaN']])],
    ['/v/obj/tagobj', obj([['$obj', obj([['$bigint', '1']])]])],
    ['/v/obj/dollar2', obj([['$a', 1], ['$b', 2]])],
    ['/v/arr/mixed', [NaN, -0, Infinity, 2n ** 70n, '\ud800', Uint8Array.of(7), null, true, [], {}]],
    ['/v/deep/nan', nested(VALUE_DEPTH_MAX, NaN)],
    ['/v/deep/bytes', nested(VALUE_DEPTH_MAX, Uint8Array.of(1, 2), 1)],
    ['/v/deep/big', nested(VALUE_DEPTH_MAX, 2n ** 80n, 2)],
    ['/v/deep/str', nested(VALUE_DEPTH_MAX, '\udfff', 3)],
    ['/v/deep/zero', nested(VALUE_DEPTH_MAX, -0)],
    ['/v/path é/𝄞/a b/%2F/\\/"/\u2028', 1],
    ['/v/path/__proto__', 2],
    ['/v/path/', 3],
    ['/v/path//x', 4],
    ['/v/path/trailing ', 5],
  ];
  nans.forEach((n, i) => u.push([`/v/nanbits/${i}`, n]));
  u.push(['/v/nanbits/nested', [obj([['x', FRAGILE_NANS[1] as number]]), FRAGILE_NANS[4] as number]]);
  return u;
}

let srv: Awaited<ReturnType<typeof recordingServer>>;
let pushed: Array<{ prefix: string; ts: number; updates: Update[]; binary: boolean }> = [];

// One server per test: its archive is a temporary directory removed after each test.
beforeEach(async () => {
  srv = await recordingServer();
  pushed = [];
  const base = fixedUpdates();
  const random = fc.sample(hostileUpdates, { seed, numRuns: 6 }).flat();
  const seen = new Set<string>();
  const extra = random.filter(([p]) => !seen.has(p) && (seen.add(p), true)).map(([p, v]): Update => [`/r${p}`, v]);
  const all = [...base, ...extra];
  const ws = await openIngestWs(srv.url);
  const doors: Array<[string, boolean, (ts: number, u: Update[]) => Promise<Record<string, unknown>>]> = [
    ['/ndjson', false, async (ts, u) => (await postBody(line(ts, u), 'application/x-ndjson')).json],
    ['/jsondoc', false, async (ts, u) => (await postBody(prettyDoc(ts, u), 'application/json')).json],
    ['/wstext', false, (ts, u) => sendIngestWs(ws, line(ts, u))],
    ['/wsmsgpack', true, (ts, u) => sendIngestWs(ws, msgpackBatch(ts, u))],
  ];
  let ts = T0;
  for (const [prefix, binary, send] of doors) {
    const mine = all.map(([p, v]): Update => [`${prefix}${p}`, v]);
    const a = await send(ts, mine);
    expect(a, JSON.stringify(a).slice(0, 2000)).toMatchObject({ accepted_updates: mine.length, rejected_lines: 0 });
    pushed.push({ prefix, ts, updates: mine, binary });
    ts += 1000;
  }
  ws.close();
}, 60_000);

afterEach(async () => {
  await srv?.close();
});

/** A JSON document laid out over many lines with CRLF and indentation (a pretty printer's). */
function prettyDoc(ts: number, u: Update[]): string {
  const updates: Record<string, unknown> = {};
  for (const [p, v] of u) setOwn(updates, p, valueToJson(v));
  return JSON.stringify({ ts, updates }, null, 2).replace(/\n/g, '\r\n');
}

async function postBody(body: string, type: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

function compare(name: string, want: Update[], got: Map<string, unknown>, bits: boolean): void {
  expect([...got.keys()].sort(), name).toEqual(want.map((u) => u[0]).sort());
  for (const [p, v] of want) {
    const d = valueDiff(v, got.get(p)) ?? (bits ? bitsDiff(v, got.get(p)) : undefined);
    if (d) throw new Error(`${name}, ${JSON.stringify(p)}: ${d}`);
  }
}

/** Every batch of a session from just before `ts` to `ts`, raw WebSocket, in `format` and `layout`. */
async function rawSession(prefix: string, ts: number, format: 'json' | 'msgpack', layout: 'pairs' | 'columns' | undefined): Promise<Map<string, unknown>> {
  const td = new TapedeckClient(srv.url);
  const s = await td.createSession({ start: formatTs(ts - 1), end: formatTs(ts), speed: 'unlimited', filter: [`${prefix}/**`] });
  const q = [format === 'msgpack' ? 'format=msgpack' : '', layout ? `layout=${layout}` : ''].filter((x) => x).join('&');
  const ws = new WebSocket(`${srv.url.replace(/^http/, 'ws')}/api/v1/sessions/${s.id}/stream${q ? `?${q}` : ''}`, { maxPayload: 1 << 30 });
  const dec = new FrameDecoder();
  const got = new Map<string, unknown>();
  let sawColumns = false;
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer, binary: boolean) => {
      try {
        if (!binary && layout === 'columns' && /"type":"batch"/.test(data.subarray(0, 40).toString())) sawColumns ||= data.includes('"paths":[');
        if (binary && layout === 'columns') sawColumns ||= data.includes(Buffer.from([0xa3, 0x69, 0x64, 0x73])); // "ids"
        for (const f of dec.decode(data, binary)) {
          if (f.type === 'state') for (const k of Object.keys(f.values)) got.set(k, f.values[k]);
          if (f.type === 'batch') for (const [p, v] of f.updates) got.set(p, v);
          if (f.type === 'error') reject(new Error(`${f.code}: ${f.message}`));
          if (f.type === 'end') resolve();
        }
      } catch (err) {
        reject(err as Error);
      }
    });
    ws.once('error', reject);
    ws.once('close', () => resolve());
  });
  ws.close();
  await td.deleteSession(s.id).catch(() => undefined);
  if (layout === 'columns') expect(sawColumns, `${format} columns frames`).toBe(true);
  return got;
}

function sdkSession(prefix: string, ts: number, format: 'json' | 'msgpack', layout: 'pairs' | 'columns'): Promise<Map<string, unknown>> {
  return sessionBatch(srv.url, prefix, ts, format, layout);
}

describe('audit17: every push door to every output', () => {
  it('REST: /history NDJSON and CSV, /state, /diff', async () => {
    for (const b of pushed) {
      const at = formatTs(b.ts);
      const nd = (await getText(srv.url, `/api/v1/history?${query(b.prefix, { from: at, to: at })}`)).split('\n').filter((l) => l !== '');
      expect(nd.length).toBe(1);
      const h = JSON.parse(nd[0] as string) as { ts: number; updates: Record<string, unknown> };
      expect(h.ts).toBe(b.ts);
      compare(`${b.prefix} history ndjson`, b.updates, new Map(Object.keys(h.updates).map((p) => [p, valueFromJson(h.updates[p], p)])), false);
      const rows = csvRows(await getText(srv.url, `/api/v1/history?${query(b.prefix, { from: at, to: at, format: 'csv' })}`));
      compare(`${b.prefix} history csv`, b.updates, new Map(rows.slice(1).map((r) => [r[2] as string, valueFromCsvCell(r[3] as string, r[2] as string)])), false);
      for (const r of rows.slice(1)) expect(Number(r[0])).toBe(b.ts);
      const st = JSON.parse(await getText(srv.url, `/api/v1/state?${query(b.prefix, { at })}`)) as { values: Record<string, unknown> };
      compare(`${b.prefix} state`, b.updates, new Map(Object.keys(st.values).map((p) => [p, valueFromJson(st.values[p], p)])), false);
      const diff = JSON.parse(await getText(srv.url, `/api/v1/diff?${new URLSearchParams({ glob: `${b.prefix}/**`, start: formatTs(b.ts - 1), end: at })}`)) as { paths: Array<{ path: string; end: unknown; start?: unknown }>; appeared: string[] };
      const ends = new Map<string, unknown>(diff.paths.map((d) => [d.path, valueFromJson(d.end, d.path)]));
      // Every path appeared in (start, end]: each has its end value.
      compare(`${b.prefix} diff end`, b.updates, ends, false);
    }
  }, 60_000);

  it('session frames: JSON and msgpack, pairs (default and named) and columns, raw WebSocket and the SDK', async () => {
    for (const b of pushed) {
      for (const format of ['json', 'msgpack'] as const) {
        for (const layout of [undefined, 'pairs', 'columns'] as const) {
          compare(`${b.prefix} raw ${format} ${layout ?? 'default'}`, b.updates, await rawSession(b.prefix, b.ts, format, layout), b.binary && format === 'msgpack');
        }
        for (const layout of ['pairs', 'columns'] as const) {
          compare(`${b.prefix} SDK ${format} ${layout}`, b.updates, await sdkSession(b.prefix, b.ts, format, layout), b.binary && format === 'msgpack');
        }
      }
    }
  }, 80_000);

  it('tapedeck inspect --at --json gives every value in its JSON form', async () => {
    const b = pushed[0]!;
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array): boolean => {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    }) as typeof process.stdout.write;
    try {
      // A second reader of the live archive, read only.
      expect(await inspectCommand([srv.dir, '--json', '--at', formatTs(b.ts), '--glob', `${b.prefix}/**`])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    const j = JSON.parse(out) as { stateAt: { values: Record<string, unknown> } };
    compare('inspect --at', b.updates, new Map(Object.keys(j.stateAt.values).map((p) => [p, valueFromJson(j.stateAt.values[p], p)])), false);
  }, 30_000);
});
