import { readArchive as readBack } from './helpers/replay.js';
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { request } from 'undici';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SERVER_LIMITS } from '../server/limits.js';
import { recordingServer } from './helpers/recording-server.js';
import { tmpDir } from './helpers/tmp.js';

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
    expect(r.json).toMatchObject({ error: { code: 'TPD_BAD_INGEST_LINE' }, accepted_lines: 3, accepted_updates: 5, rejected_lines: 4, restamped_lines: 1 }); // line 8's ts is before line 7's: moved, and said
    expect((r.json.rejected as Array<{ line: number; code: string }>).map((x) => [x.line, x.code])).toEqual([
      [2, 'TPD_BAD_INGEST_LINE'], [3, 'TPD_BAD_PATH'], [5, 'TPD_BAD_INGEST_LINE'], [6, 'TPD_BAD_ARGUMENT'],
    ]);
    const ok = await post(srv.url, `${JSON.stringify({ updates: { '/p/a': 6 } })}\n`, 'text/plain');
    expect(ok).toEqual({ status: 200, json: { ack: 'memory', lines_read: 1, accepted_lines: 1, accepted_updates: 1, recorded_updates: 1, filtered_updates: 0, rejected_lines: 0, restamped_lines: 0, rejected: [] } });
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
    expect(answers[1]).toEqual({ ack: 'memory', lines_read: 1, accepted_lines: 1, accepted_updates: 1, recorded_updates: 1, filtered_updates: 0, rejected_lines: 0, restamped_lines: 0, rejected: [] });
    // A binary message is msgpack (test/ingest-msgpack.test.ts): these bytes are none.
    expect(answers[2]).toMatchObject({ error: { code: 'TPD_BAD_INGEST_LINE' }, lines_read: 2, rejected: [{ line: 1 }, { line: 2 }] });
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

function wsAnswers(url: string, n: number): { ws: WebSocket; answers: Promise<Array<Record<string, unknown>>>; closed: Promise<number>; open: Promise<unknown> } {
  const ws = new WebSocket(url);
  const got: Array<Record<string, unknown>> = [];
  const answers = new Promise<Array<Record<string, unknown>>>((resolve) => ws.on('message', (d) => {
    got.push(JSON.parse(String(d)) as Record<string, unknown>);
    if (got.length === n) resolve(got);
  }));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const open = new Promise((resolve) => ws.once('open', resolve));
  return { ws, answers, closed, open };
}

describe('push ingest that never lies', () => {
  it('stops reading 2 MB of bad lines at ingestBadLinesMax with TPD_TOO_MANY_BAD_LINES; the good lines before are kept and counted', async () => {
    const srv = await recordingServer();
    const good = [1, 2, 3].map((i) => JSON.stringify({ ts: T0 + i, updates: { '/g/a': i } }));
    const bad = 'nope\n'.repeat(Math.ceil((2 * 1024 * 1024) / 5));
    const after = JSON.stringify({ ts: T0 + 9, updates: { '/g/a': 9 } });
    const r = await post(srv.url, `${good.join('\n')}\n${bad}${after}\n`);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({
      error: { code: 'TPD_TOO_MANY_BAD_LINES' },
      lines_read: 3 + SERVER_LIMITS.ingestBadLinesMax,
      accepted_lines: 3,
      recorded_updates: 3,
      rejected_lines: SERVER_LIMITS.ingestBadLinesMax,
    });
    const rejected = r.json.rejected as Array<{ line: number; code: string }>;
    expect(rejected).toHaveLength(SERVER_LIMITS.ingestRejectionsListedMax);
    expect(rejected[0]).toMatchObject({ line: 4, code: 'TPD_BAD_INGEST_LINE' });
    await srv.close();
    // The line after the garbage was never read, so it is not recorded.
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/g/a', 1]], [['/g/a', 2]], [['/g/a', 3]]]);
  });

  it('answers ack=durable only once the lines are committed; refuses an unknown ack level with TPD_BAD_ARGUMENT', async () => {
    // No timed flush: only the durable acknowledgement commits.
    const srv = await recordingServer({ record: { spec: ['/**'], flush_interval: '1h' } });
    const mem = await post(srv.url, JSON.stringify({ ts: T0, updates: { '/a/m': 1 } }));
    expect(mem.json).toMatchObject({ ack: 'memory', accepted_lines: 1 });
    const bogus = await request(`${srv.url}/api/v1/ingest?ack=fsync`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"updates":{"/a/x":1}}' });
    expect(bogus.statusCode).toBe(400);
    expect(await bogus.body.json()).toMatchObject({ error: { code: 'TPD_BAD_ARGUMENT' } });
    const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ ts: T0 + 1, updates: { '/a/d': 2 } }) });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ ack: 'durable', accepted_lines: 1, recorded_updates: 1 });
    // A reader sees only committed data: both batches (the durable one commits what came before it).
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/a/m', 1]], [['/a/d', 2]]]);

    const ws = wsAnswers(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws?ack=durable`, 1);
    await ws.open;
    ws.ws.send(JSON.stringify({ ts: T0 + 2, updates: { '/a/w': 3 } }));
    expect((await ws.answers)[0]).toMatchObject({ ack: 'durable', accepted_lines: 1 });
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/a/m', 1]], [['/a/d', 2]], [['/a/w', 3]]]);
    ws.ws.close();
    const badWs = wsAnswers(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws?ack=maybe`, 1);
    expect((await badWs.answers)[0]).toMatchObject({ error: { code: 'TPD_BAD_ARGUMENT' } });
    expect(await badWs.closed).toBe(1008);
    await srv.close();
  });

  it('counts filtered updates; refuse_filtered answers 422 to a push left out whole; an empty batch is a bad line', async () => {
    const srv = await recordingServer({ record: { spec: ['/keep/**'], flush_interval: '0' }, sources: [{ name: 'push', type: 'push', refuse_filtered: true }] });
    const some = await post(srv.url, [JSON.stringify({ updates: { '/keep/x': 1, '/drop/y': 2 } }), JSON.stringify({ updates: { '/drop/z': 3 } })].join('\n'));
    expect(some).toMatchObject({ status: 200, json: { accepted_lines: 2, accepted_updates: 3, recorded_updates: 1, filtered_updates: 2 } });
    const none = await post(srv.url, JSON.stringify({ updates: { '/drop/y': 4, '/drop/z': 5 } }));
    expect(none).toMatchObject({ status: 422, json: { error: { code: 'TPD_INGEST_FILTERED' }, recorded_updates: 0, filtered_updates: 2 } });
    const empty = await post(srv.url, `{"updates":{}}\n${JSON.stringify({ updates: { '/keep/e': 6 } })}`);
    expect(empty).toMatchObject({ status: 400, json: { error: { code: 'TPD_BAD_INGEST_LINE' }, accepted_lines: 1, rejected: [{ line: 1, code: 'TPD_BAD_INGEST_LINE' }] } });
    await srv.close();
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/keep/x', 1]], [['/keep/e', 6]]]);
  });

  it('answers an error of the archive with its own status and Retry-After, not as bad lines (HTTP and WebSocket)', async () => {
    const srv = await recordingServer();
    const before = await post(srv.url, JSON.stringify({ ts: T0, updates: { '/c/a': 1 } }));
    expect(before.status).toBe(200);
    await srv.archive.writer!.close();
    const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${JSON.stringify({ updates: { '/c/a': 2 } })}\n${JSON.stringify({ updates: { '/c/a': 3 } })}\n` });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe(String(SERVER_LIMITS.ingestClosedRetryAfterS));
    expect(await res.body.json()).toMatchObject({ error: { code: 'TPD_ARCHIVE_CLOSED' }, lines_read: 1, accepted_lines: 0, rejected_lines: 0, rejected: [] });
    const ws = wsAnswers(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws`, 1);
    await ws.open;
    ws.ws.send(JSON.stringify({ updates: { '/c/a': 4 } }));
    expect((await ws.answers)[0]).toMatchObject({ error: { code: 'TPD_ARCHIVE_CLOSED' }, accepted_lines: 0, rejected_lines: 0, retry_after_s: SERVER_LIMITS.ingestClosedRetryAfterS });
    expect(await ws.closed).toBe(1001);
    await srv.close();
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/c/a', 1]]]);
  });

  it('answers a full disk 507 TPD_DISK_FULL with Retry-After and the lines counted, never 400 (tmpfs of 1 MiB)', async (ctx) => {
    const mnt = await tmpDir('tapedeck-full-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      ctx.skip(); // needs root and mount rights (CI has them)
      return;
    }
    let srv: Awaited<ReturnType<typeof recordingServer>> | undefined;
    try {
      srv = await recordingServer({ archive_directory: mnt, record: { spec: ['/**'], flush_interval: '1h' } });
      const noise = (i: number): string => JSON.stringify({ updates: { [`/full/${i}`]: randomBytes(3000).toString('base64') } });
      let last: { status: number; headers: Record<string, unknown>; json: Record<string, unknown> } | undefined;
      for (let i = 0; i < 200; i++) {
        const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${noise(i * 2)}\n${noise(i * 2 + 1)}\n` });
        last = { status: res.statusCode, headers: res.headers, json: (await res.body.json()) as Record<string, unknown> };
        if (last.status !== 200) break;
      }
      expect(last?.status, JSON.stringify(last?.json)).not.toBe(200);
      // The writer keeps the data and retries; the durable acknowledgement gives up after
      // diskFullAckWaitMs and says so, with the lines counted (appended, not acknowledged).
      expect(last?.status).toBe(507);
      expect(last?.json).toMatchObject({ error: { code: 'TPD_DISK_FULL' }, ack: 'durable', lines_read: 2, accepted_lines: 2, rejected_lines: 0, rejected: [] });
      expect(Number(last?.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await srv?.close().catch(() => undefined);
      execFileSync('umount', [mnt]);
    }
  }, 60_000);
});
