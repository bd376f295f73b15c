/**
 * Throws malformed JSON, wrong types, huge bodies, random bytes and junk query strings at
 * every route of the OpenAPI document, and random frames at the WebSockets: no answer may
 * be a 5xx, every error must carry a code, and the server must be alive afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/main.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

let running: RunningServer;
let sessionId = '';

beforeAll(async () => {
  const config = resolveConfig({
    archive_directory: await tmpDir('tapedeck-fuzz-'),
    record: { spec: ['/**'], flush_interval: '50ms' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'push', type: 'push' }],
    log_level: 'silent',
  });
  running = await startServer(config);
  const ingest = await fetch(`${running.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"updates":{"/a/b":1,"/a/c":"x"}}\n' });
  expect(ingest.status).toBeLessThan(300);
  const s = await fetch(`${running.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":"pause"}' });
  sessionId = ((await s.json()) as { id: string }).id;
});

afterAll(async () => {
  await running?.close();
});

function junk(r: () => number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
}

const WRONG: unknown[] = [null, 0, -1, 1e308, 'x', '', [], [1, 'a'], {}, { speed: {} }, { pos: [] }, { state: 7 }, { filter: [1, 2] }, { start: '2026-13-45T99:99:99Z' }, { pos: '+999999999' }, { speed: 'NaN' }, { updates: 'no' }, { '__proto__': { x: 1 } }, 'A'.repeat(5000)];
const QUERIES = ['?glob=[[[', '?layout=rows', '?layout=columns&format=xml', '?at=yesterday', '?from=1&to=0', '?format=xml', '?glob=' + '*'.repeat(3000), '?at=' + '9'.repeat(40), '?%ZZ=%ZZ', '?format=msgpack&format=json', '?access_token=' + 'x'.repeat(100)];

describe('fuzz', () => {
  it('answers every route without a 5xx and keeps serving', async () => {
    const doc = (await (await fetch(`${running.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const r = rng(1234);
    const results: Array<{ route: string; status: number; body: string; code: string | null }> = [];
    const hit = async (method: string, path: string, body: Buffer | string | undefined, type: string | undefined): Promise<void> => {
      const headers: Record<string, string> = {};
      if (type) headers['content-type'] = type;
      const res = await fetch(running.url + path, { method, headers, body: body ?? null });
      const text = await res.text();
      results.push({ route: `${method} ${path.slice(0, 80)}`, status: res.status, body: text.slice(0, 200), code: res.headers.get('tapedeck-error-code') });
    };
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops).map((m) => m.toUpperCase())) {
        if (template.endsWith('/stream') || template.endsWith('/ws')) continue; // WebSockets below
        const paths = template.includes('{id}')
          ? [template.replace('{id}', sessionId), template.replace('{id}', 'f'.repeat(32)), template.replace('{id}', '..%2F..%2Fetc'), template.replace('{id}', 'x'.repeat(300))]
          : [template];
        for (const p of paths) {
          for (const q of QUERIES) await hit(method, p + q, undefined, undefined);
          if (method === 'GET' || method === 'DELETE') continue;
          for (const w of WRONG) await hit(method, p, JSON.stringify(w), 'application/json');
          await hit(method, p, '{"unterminated": ', 'application/json');
          await hit(method, p, junk(r, 512), 'application/json');
          await hit(method, p, junk(r, 512), 'application/x-ndjson');
          await hit(method, p, junk(r, 512), 'application/octet-stream');
          await hit(method, p, '{}\n{"updates":{"/ok":1}}\n[]\n' + junk(r, 64).toString('latin1'), 'application/x-ndjson');
          await hit(method, p, Buffer.alloc(17 * 1024 * 1024, 0x7b), 'application/json');
        }
      }
    }
    const bad = results.filter((x) => x.status >= 500);
    expect(bad).toEqual([]);
    // Every error answer is a JSON error with a code. The Prometheus query API answers in
    // Prometheus' own error shape (docs/prometheus.md), its code in the tapedeck-error-code header.
    for (const x of results.filter((y) => y.status >= 400)) {
      if (/"status":"error","errorType":"[a-z_]+"/.test(x.body)) {
        expect(x.code, x.route).toMatch(/^TPD_[A-Z_]+$/);
      } else {
        expect(x.body, x.route).toMatch(/"code":"TPD_[A-Z_]+"/);
      }
    }
    expect(results.length).toBeGreaterThan(200);
    expect((await fetch(`${running.url}/health`)).status).toBe(200);
    const ok = await fetch(`${running.url}/api/v1/state?glob=/a/*`);
    expect(ok.status).toBe(200);
  }, 120_000);

  it('survives random frames on the session and ingest WebSockets', async () => {
    const r = rng(99);
    // The route fuzz deleted the first session; take a new one.
    const s0 = await fetch(`${running.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":"pause"}' });
    sessionId = ((await s0.json()) as { id: string }).id;
    for (const path of [`/api/v1/sessions/${sessionId}/stream`, `/api/v1/sessions/${sessionId}/stream?format=msgpack`, '/api/v1/ingest/ws']) {
      const ws = new WebSocket(running.url.replace('http', 'ws') + path);
      const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      for (let i = 0; i < 50; i++) {
        const kind = i % 5;
        if (kind === 0) ws.send(junk(r, 1 + Math.floor(r() * 300)));
        else if (kind === 1) ws.send(junk(r, 200).toString('latin1'));
        else if (kind === 2) ws.send(JSON.stringify({ type: 'control', set: WRONG[i % WRONG.length] }));
        else if (kind === 3) ws.send(JSON.stringify(WRONG[i % WRONG.length]));
        else ws.send('{"type":"control","set":{"pos":"-1"}}');
      }
      // A frame over the 1 MiB WebSocket limit closes that socket (code 1009), nothing else.
      ws.send(Buffer.alloc(2 * 1024 * 1024, 1));
      await closed;
    }
    expect((await fetch(`${running.url}/health`)).status).toBe(200);
    const s = await fetch(`${running.url}/api/v1/sessions/${sessionId}`);
    expect(s.status).toBe(200);
  }, 60_000);
});
