/**
 * Timestamps at the ends of what the archive keeps (docs/time.md: 0 to 2^53 - 1 µs) through
 * every door: pushed as JSON numbers, RFC 3339 text and msgpack integers, read back from
 * /history (NDJSON `ts`, CSV `ts` and `time`), /diff, session frames (JSON and msgpack,
 * pairs and columns) and the SDK: the same integer µs everywhere. Just outside (-1 µs,
 * 2^53 µs, impossible dates) is refused with TPD_BAD_ARGUMENT, nothing recorded.
 */
import { request } from 'undici';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { TapedeckClient } from '../clients/client/index.js';
import { FrameDecoder } from '../protocol/frames.js';
import { formatTs } from '../protocol/time.js';
import { TS_MAX_US } from '../protocol/value.js';
import { MsgpackWriter } from '../protocol/value-msgpack.js';
import { recordingServerEach, type RecordingServer } from './helpers/recording-server.js';
import { csvRows, getText, openIngestWs, sendIngestWs } from './helpers/value-outputs.js';

let srv: RecordingServer;
recordingServerEach((s) => (srv = s));

async function post(body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

function msgpackTs(ts: number | bigint, path: string): Uint8Array {
  const w = new MsgpackWriter();
  w.mapHeader(2);
  w.str('ts');
  if (typeof ts === 'bigint') w.value(ts);
  else w.num(ts);
  w.str('updates');
  w.mapHeader(1);
  w.str(path);
  w.num(1);
  return w.take();
}

async function sessionTimes(format: 'json' | 'msgpack', layout: 'pairs' | 'columns'): Promise<number[]> {
  const td = new TapedeckClient(srv.url);
  const s = await td.createSession({ start: formatTs(0), end: 'unbounded', speed: 'unlimited', filter: ['/t/**'] });
  const ws = new WebSocket(`${srv.url.replace(/^http/, 'ws')}/api/v1/sessions/${s.id}/stream?layout=${layout}${format === 'msgpack' ? '&format=msgpack' : ''}`);
  const dec = new FrameDecoder();
  const times: number[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer, binary: boolean) => {
      for (const f of dec.decode(data, binary)) {
        // The state at the start holds the batch at the start (0 µs): its ts says so.
        if (f.type === 'state' && f.ts !== null) times.push(f.ts);
        if (f.type === 'batch') times.push(f.ts);
        if (f.type === 'error') reject(new Error(`${f.code}: ${f.message}`));
        if (f.type === 'end' || (f.type === 'batch' && f.ts === TS_MAX_US)) resolve();
      }
    });
    ws.once('error', reject);
  });
  ws.close();
  await td.deleteSession(s.id).catch(() => undefined);
  return times;
}

describe('audit17: times at the ends of the range', () => {
  it('keeps 0, 1, 2^53 - 2 and 2^53 - 1 µs exactly through every door and output', async () => {
    const want = [0, 1, 999_999, 1_000_000, TS_MAX_US - 2, TS_MAX_US - 1, TS_MAX_US];
    // 0 as a JSON number and as RFC 3339; 1 µs as RFC 3339 with µs; the top through msgpack and NDJSON.
    expect((await post(`{"ts":0,"updates":{"/t/a":0}}\n`)).json).toMatchObject({ accepted_lines: 1 });
    expect((await post(`{"ts":"1970-01-01T00:00:00.000001Z","updates":{"/t/a":1}}\n`)).json).toMatchObject({ accepted_lines: 1 });
    expect((await post(`{"ts":"1970-01-01T00:00:00.999999999Z","updates":{"/t/a":2}}\n`)).json).toMatchObject({ accepted_lines: 1 });
    expect((await post(`{"ts":1,"updates":{"/t/a":3}}\n`)).json).toMatchObject({ accepted_lines: 1 });
    const ws = await openIngestWs(srv.url);
    expect(await sendIngestWs(ws, msgpackTs(TS_MAX_US - 2, '/t/a'))).toMatchObject({ accepted_lines: 1 });
    expect(await sendIngestWs(ws, msgpackTs(BigInt(TS_MAX_US - 1), '/t/a'))).toMatchObject({ accepted_lines: 1 });
    ws.close();
    expect((await post(`{"ts":"${formatTs(TS_MAX_US)}","updates":{"/t/a":4}}\n`)).json).toMatchObject({ accepted_lines: 1 });

    const nd = (await getText(srv.url, `/api/v1/history?glob=/t/**&from=${formatTs(0)}`)).split('\n').filter((l) => l).map((l) => (JSON.parse(l) as { ts: number }).ts);
    expect(nd).toEqual(want);
    const rows = csvRows(await getText(srv.url, `/api/v1/history?glob=/t/**&from=${formatTs(0)}&format=csv`)).slice(1);
    expect(rows.map((r) => Number(r[0]))).toEqual(want);
    expect(rows.map((r) => r[1])).toEqual(want.map(formatTs));
    // A time text reads back as the same µs.
    expect(formatTs(TS_MAX_US)).toBe('2255-06-05T23:47:34.740991Z');
    const diff = JSON.parse(await getText(srv.url, `/api/v1/diff?glob=/t/**&start=${formatTs(0)}&end=${formatTs(TS_MAX_US)}`)) as { paths: Array<{ firstTs: number; lastTs: number }>; start: { ts: number }; end: { ts: number } };
    expect(diff.start.ts).toBe(0);
    expect(diff.end.ts).toBe(TS_MAX_US);
    expect(diff.paths[0]).toMatchObject({ firstTs: 1, lastTs: TS_MAX_US });
    for (const format of ['json', 'msgpack'] as const) {
      for (const layout of ['pairs', 'columns'] as const) expect(await sessionTimes(format, layout), `${format} ${layout}`).toEqual(want);
    }
  }, 60_000);

  it('refuses times just outside, and time forms it cannot read exactly, recording nothing', async () => {
    const lines = [
      '{"ts":-1,"updates":{"/u/a":1}}',
      `{"ts":${TS_MAX_US + 1},"updates":{"/u/a":1}}`,
      '{"ts":"1969-12-31T23:59:59.999999Z","updates":{"/u/a":1}}',
      '{"ts":"2255-06-05T23:47:34.740992Z","updates":{"/u/a":1}}',
      '{"ts":"2024-02-30T00:00:00Z","updates":{"/u/a":1}}',
      '{"ts":"2024-01-01T23:59:60Z","updates":{"/u/a":1}}',
      '{"ts":1e21,"updates":{"/u/a":1}}',
      '{"ts":1e-7,"updates":{"/u/a":1}}',
      '{"ts":"NaN","updates":{"/u/a":1}}',
      '{"ts":"","updates":{"/u/a":1}}',
      '{"ts":true,"updates":{"/u/a":1}}',
      '{"ts":{"$num":"Infinity"},"updates":{"/u/a":1}}',
    ];
    for (const l of lines) {
      const a = await post(`${l}\n`);
      expect(a.status, l).toBe(400);
      expect(a.json, l).toMatchObject({ accepted_lines: 0, rejected_lines: 1 });
      expect((a.json.rejected as Array<{ code: string }>)[0]?.code, l).toBe('TPD_BAD_ARGUMENT');
    }
    const ws = await openIngestWs(srv.url);
    for (const ts of [2n ** 53n, -1, NaN, Infinity]) {
      const a = await sendIngestWs(ws, msgpackTs(ts, '/u/a'));
      expect(a, String(ts)).toMatchObject({ accepted_lines: 0, rejected_lines: 1 });
      expect((a.rejected as Array<{ code: string }>)[0]?.code, String(ts)).toBe('TPD_BAD_ARGUMENT');
    }
    ws.close();
    expect(await getText(srv.url, '/api/v1/history?glob=/u/**')).toBe('');
  });
});
