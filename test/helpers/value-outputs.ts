/**
 * Every output of a server a value can be read back from (docs/values.md): /history NDJSON
 * and CSV, /state, and a playback session's frames, JSON and msgpack, through the SDK; each
 * read back through protocol/'s codec, so a test compares what went in with what each gives;
 * and the two forms a batch is pushed in (an NDJSON line, a msgpack ingest message).
 */
import { request } from 'undici';
import WebSocket from 'ws';
import { expect } from 'vitest';
import { TapedeckClient, type StreamFrame } from '../../clients/client/index.js';
import { formatTs } from '../../protocol/time.js';
import { setOwn, type Update, type Value } from '../../protocol/value.js';
import { valueFromCsvCell, valueFromJson, valueToJson } from '../../protocol/value-json.js';
import { MsgpackWriter } from '../../protocol/value-msgpack.js';
import { valueDiff } from './values.js';

/** An NDJSON line of one batch, values in their JSON form (own properties: `/__proto__` stays a key). */
export function line(tsUs: number, updates: readonly Update[]): string {
  const u: Record<string, unknown> = {};
  for (const [p, v] of updates) setOwn(u, p, valueToJson(v));
  return JSON.stringify({ ts: tsUs, updates: u });
}

/** A binary WebSocket ingest message of one batch: a msgpack map, values in their msgpack form (each from depth 0, as in a line). */
export function msgpackBatch(tsUs: number, updates: readonly Update[]): Uint8Array {
  const w = new MsgpackWriter();
  w.mapHeader(2);
  w.str('ts');
  w.num(tsUs);
  w.str('updates');
  w.mapHeader(updates.length);
  for (const [p, v] of updates) {
    w.str(p);
    w.value(v);
  }
  return w.take();
}

/** A durable WebSocket ingest connection to `url`, open. */
export async function openIngestWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/api/v1/ingest/ws?ack=durable`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return ws;
}

/** One WebSocket ingest message and its answer (answers come in order, one per message). */
export function sendIngestWs(ws: WebSocket, message: string | Uint8Array): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    ws.once('message', (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>));
    ws.send(message, { binary: typeof message !== 'string' });
  });
}

/** An NDJSON push, durable (the outputs read what the archive holds), and its answer. */
export async function postNdjson(url: string, text: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${text}\n` });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

export async function getText(url: string, path: string): Promise<string> {
  const res = await request(`${url}${path}`);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${text}`);
  return text;
}

export function query(prefix: string, extra: Record<string, string>): string {
  return new URLSearchParams({ glob: `${prefix}/**`, ...extra }).toString();
}

/** RFC 4180 rows: quoted fields with doubled quotes, commas and newlines inside quotes. */
export function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  return rows;
}

export type Outputs = Record<string, Map<string, unknown>>;

/** What each output gives for the batch at `tsUs` under `prefix`: path -> value (as read). */
export async function readOutputs(url: string, prefix: string, tsUs: number): Promise<Outputs> {
  const at = formatTs(tsUs);
  const out: Outputs = {};
  const ndjson = (await getText(url, `/api/v1/history?${query(prefix, { from: at, to: at })}`)).split('\n').filter((l) => l !== '');
  expect(ndjson.length).toBe(1);
  const h = JSON.parse(ndjson[0] as string) as { ts: number; updates: Record<string, unknown> };
  expect(h.ts).toBe(tsUs);
  out['history ndjson'] = new Map(Object.entries(h.updates).map(([p, j]) => [p, valueFromJson(j, p)]));
  const rows = csvRows(await getText(url, `/api/v1/history?${query(prefix, { from: at, to: at, format: 'csv' })}`));
  out['history csv'] = new Map(rows.slice(1).map((r) => [r[2] as string, valueFromCsvCell(r[3] as string, r[2] as string)]));
  const state = JSON.parse(await getText(url, `/api/v1/state?${query(prefix, { at })}`)) as { values: Record<string, unknown> };
  out.state = new Map(Object.entries(state.values).map(([p, j]) => [p, valueFromJson(j, p)]));
  for (const format of ['json', 'msgpack'] as const) out[`session ${format} (SDK)`] = await sessionBatch(url, prefix, tsUs, format);
  return out;
}

/** The batch a playback session from just before it to it plays, through the SDK (in the frame layout asked, else the SDK's). */
export async function sessionBatch(url: string, prefix: string, tsUs: number, format: 'json' | 'msgpack', layout?: 'pairs' | 'columns'): Promise<Map<string, unknown>> {
  const td = new TapedeckClient(url);
  const s = await td.createSession({ start: formatTs(tsUs - 1), end: formatTs(tsUs), speed: 'unlimited', filter: [`${prefix}/**`] });
  const stream = td.stream(s.id, layout === undefined ? { format } : { format, layout });
  const got = new Map<string, unknown>();
  try {
    for await (const f of stream as AsyncIterable<StreamFrame>) {
      // The state frame names the paths (null: no value yet at the start), the batch fills them.
      if (f.type === 'state') for (const [p, v] of Object.entries(f.values)) got.set(p, v);
      if (f.type === 'batch') for (const [p, v] of f.updates) got.set(p, v);
      if (f.type === 'error') throw new Error(`${f.code}: ${f.message}`);
      if (f.type === 'end') break;
    }
  } finally {
    stream.close();
    await td.deleteSession(s.id).catch(() => undefined);
  }
  return got;
}

export function expectAllSame(want: readonly Update[], outputs: Outputs): void {
  for (const [name, got] of Object.entries(outputs)) {
    expect([...got.keys()].sort(), name).toEqual(want.map((u) => u[0]).sort());
    for (const [p, v] of want) {
      const d = valueDiff(v as Value, got.get(p));
      if (d) throw new Error(`${name}, ${JSON.stringify(p)}: ${d}`);
    }
  }
}
