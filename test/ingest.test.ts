import { readArchive as readBack } from './helpers/replay.js';
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { request } from 'undici';
import { recordingServer } from './helpers/recording-server.js';

async function post(url: string, body: string, type = 'application/x-ndjson'): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}


const T0 = 1_763_000_000; // epoch seconds

describe('push ingest', () => {
  it('rejects bad lines with their line numbers and keeps the good ones', async () => {
    const srv = await recordingServer();
    const lines = [
      JSON.stringify({ ts: T0, updates: { '/p/a': 1, '/p/b': 'x' } }),
      '{"updates": {"/p/a": 2}', // truncated JSON
      JSON.stringify({ updates: { 'no-slash': 1 } }),
      '',
      JSON.stringify({ ts: T0 + 1, updates: { '/p/a': 3 }, extra: true }),
      JSON.stringify({ ts: 'yesterday', updates: { '/p/a': 4 } }),
      JSON.stringify({ ts: (T0 + 2) * 1000, updates: { '/p/a': 5, '/p/c': [1, { d: null }] } }),
      JSON.stringify({ ts: `2025-11-13T02:13:21.5Z`, updates: { '/p/b': 'y' } }),
    ];
    const r = await post(srv.url, lines.join('\n'));
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: { code: 'TPD_BAD_INGEST_LINE' }, accepted_lines: 3, accepted_updates: 5, rejected_lines: 4 });
    expect((r.json.rejected as Array<{ line: number; code: string }>).map((x) => [x.line, x.code])).toEqual([
      [2, 'TPD_BAD_INGEST_LINE'], [3, 'TPD_BAD_PATH'], [5, 'TPD_BAD_INGEST_LINE'], [6, 'TPD_BAD_ARGUMENT'],
    ]);
    const ok = await post(srv.url, `${JSON.stringify({ updates: { '/p/a': 6 } })}\n`, 'text/plain');
    expect(ok).toEqual({ status: 200, json: { accepted_lines: 1, accepted_updates: 1, rejected_lines: 0, rejected: [] } });
    // application/json: one batch, pretty-printed or not.
    const doc = await post(srv.url, JSON.stringify({ updates: { '/p/j': 'a\nb', '/p/k': [1, 2] } }, null, 2), 'application/json');
    expect(doc.json).toMatchObject({ accepted_lines: 1, accepted_updates: 2 });
    const health = (await (await request(`${srv.url}/api/v1/sources`)).body.json()) as { sources: Array<Record<string, unknown>> };
    expect(health.sources[0]).toMatchObject({ name: 'push', type: 'push', status: 'ok', batches: 3, updates: 8, failures: 1 });
    await srv.close();
    const got = await readBack(srv.dir);
    expect(got.slice(0, 3)).toEqual([
      { ts: T0 * 1e6, updates: [['/p/a', 1], ['/p/b', 'x']] },
      { ts: (T0 + 2) * 1e6, updates: [['/p/a', 5], ['/p/c', [1, { d: null }]]] },
      // A time before the last batch is moved just after it: order holds.
      { ts: (T0 + 2) * 1e6 + 1, updates: [['/p/b', 'y']] },
    ]);
    expect(got[3]?.updates).toEqual([['/p/a', 6]]);
    expect(got[3]?.ts).toBeGreaterThan(Date.now() * 1000 - 60e6);
    expect(got[4]?.updates).toEqual([['/p/j', 'a\nb'], ['/p/k', [1, 2]]]);
  });

  it('takes NDJSON over a WebSocket, one answer per message, in order', async () => {
    const srv = await recordingServer();
    const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws`);
    const answers: Array<Record<string, unknown>> = [];
    const got = new Promise<void>((resolve) => ws.on('message', (d) => {
      answers.push(JSON.parse(String(d)) as Record<string, unknown>);
      if (answers.length === 3) resolve();
    }));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(`${JSON.stringify({ ts: T0, updates: { '/w/a': 1 } })}\nnope\n`);
    ws.send(JSON.stringify({ ts: T0 + 1, updates: { '/w/a': 2 } }));
    ws.send(Buffer.from('binary'), { binary: true });
    await got;
    ws.close();
    expect(answers[0]).toMatchObject({ error: { code: 'TPD_BAD_INGEST_LINE' }, accepted_lines: 1, rejected: [{ line: 2 }] });
    expect(answers[1]).toEqual({ accepted_lines: 1, accepted_updates: 1, rejected_lines: 0, rejected: [] });
    expect(answers[2]).toMatchObject({ error: { code: 'TPD_BAD_INGEST_LINE', message: 'send NDJSON as text messages' } });
    await srv.close();
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/w/a', 1]], [['/w/a', 2]]]);
  });

  it('answers every one of many WebSocket messages sent at once, in order (the socket pauses and resumes)', async () => {
    const srv = await recordingServer();
    const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws`);
    const n = 60;
    const answers: Array<{ accepted_lines: number }> = [];
    const got = new Promise<void>((resolve) => ws.on('message', (d) => {
      answers.push(JSON.parse(String(d)) as { accepted_lines: number });
      if (answers.length === n) resolve();
    }));
    await new Promise((resolve) => ws.once('open', resolve));
    for (let i = 0; i < n; i++) {
      const lines = Array.from({ length: 200 }, (_, j) => JSON.stringify({ updates: { '/m/i': i, '/m/j': j } }));
      ws.send(lines.join('\n'));
    }
    await got;
    ws.close();
    expect(answers.every((a) => a.accepted_lines === 200)).toBe(true);
    await srv.close();
    const got2 = await readBack(srv.dir);
    expect(got2).toHaveLength(n * 200);
    expect(got2.map((b) => b.updates[0]?.[1])).toEqual(Array.from({ length: n * 200 }, (_, k) => Math.floor(k / 200)));
  });

  it('takes bodies up to the ingest limit (64 MiB) and refuses larger ones with 413 before reading them', async () => {
    const srv = await recordingServer();
    const port = Number(new URL(srv.url).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => {
        sock.write(`POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${64 * 1024 * 1024 + 1}\r\n\r\n{"updates":{}}\n`);
      });
      let text = '';
      sock.on('data', (d) => {
        text += String(d);
        if (text.includes('\r\n\r\n{')) {
          sock.destroy();
          resolve(text);
        }
      });
      sock.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toMatch(/"code":"TPD_BODY_TOO_LARGE"/);
    // Above the app's general 16 MiB body limit, below the ingest limit: accepted.
    const line = JSON.stringify({ updates: { '/big/x': 'v'.repeat(1000) } });
    const lines = Math.ceil((17 * 1024 * 1024) / (line.length + 1));
    const big = await post(srv.url, `${line}\n`.repeat(lines));
    expect(big.status).toBe(200);
    expect(big.json.accepted_lines).toBe(lines);
    await srv.close();
  });

  it('filters by the record spec and answers 404 when no push source is configured', async () => {
    const srv = await recordingServer({ record: { spec: ['/keep/**', '/keep/x'], flush_interval: '0' } });
    const r = await post(srv.url, JSON.stringify({ updates: { '/keep/x': 1, '/drop/y': 2 } }));
    expect(r.status).toBe(200);
    await srv.close();
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/keep/x', 1]]]);

    const none = await recordingServer({ sources: [] });
    const n = await post(none.url, '{"updates":{}}');
    expect(n).toEqual({ status: 404, json: { error: { code: 'TPD_NO_PUSH_SOURCE', message: 'no source of type "push" is configured' } } });
    await none.close();
  });
});
