import { afterEach, describe, expect, it, vi } from 'vitest';
import { upstream } from './helpers/upstreams.js';
import { execFile, execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { startServer, api, type TestServer, authedCall } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBatches } from './helpers/workload.js';
import { ERRORS } from '../protocol/errors.js';
import { resolveConfig } from '../server/config.js';
import { startServer as startProcess } from '../server/main.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const TOKENS = [
  { name: 'reader', token: 'read-token-0123456789', scopes: ['read' as const] },
  { name: 'pusher', token: 'ingest-token-0123456789', scopes: ['ingest' as const] },
  { name: 'boss', token: 'admin-token-0123456789', scopes: ['admin' as const] },
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests poke at arbitrary JSON bodies
const call = (method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> => authedCall(server!.url, method, path, token, body);

/** `promtool check metrics` on an exposition; the test setup installs promtool (Debian's prometheus package) when missing. */
async function promtoolCheck(text: string): Promise<{ code: number; stderr: string }> {
  execFileSync('bash', [new URL('../scripts/install-promtool.sh', import.meta.url).pathname], { stdio: 'inherit', timeout: 600_000 });
  // promtool reads the exposition on stdin and exits non-zero on any problem.
  return new Promise((resolve) => {
    const p = execFile('promtool', ['check', 'metrics'], (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }));
    p.stdin!.end(text);
  });
}

describe('metrics', () => {
  it('exposes Prometheus metrics that pass promtool check metrics', async () => {
    server = await startServer(randomBatches(1, 200));
    // Some traffic so histograms and labelled series exist.
    const s = await api(server.url, 'POST', '/api/v1/sessions', { speed: 'unlimited' });
    expect(s.status).toBe(201);
    await api(server.url, 'GET', '/api/v1/archive');
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    for (const name of ['tapedeck_batches_written_total', 'tapedeck_sessions_active', 'tapedeck_http_request_duration_seconds_bucket', 'tapedeck_flush_duration_seconds_bucket', 'tapedeck_pacing_error_seconds_bucket', 'tapedeck_archive_files']) {
      expect(text, name).toContain(name);
    }
    expect(text).toMatch(/tapedeck_batches_written_total 200\b/);
    expect(text).toMatch(/tapedeck_sessions_created_total 1\b/);
    const out = await promtoolCheck(text);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
  });
});

describe('metrics of a fully wired server', () => {
  it('counts polls by result, hook runs, rotations, pacing, frames and HTTP by route and status; promtool passes', async () => {
    const dir = await tmpDir();
    const cold = join(dir, 'cold');
    await mkdir(cold);
    const fixtures = new URL('./fixtures/hooks/', import.meta.url).pathname;
    const config = resolveConfig({
      archive_directory: join(dir, 'archive'),
      archive_cmds: { put: [join(fixtures, 'put-copy.sh'), [cold]] },
      record: { spec: ['/**'], flush_interval: '50ms' },
      publish: { bind: '127.0.0.1:0' },
      // The matrix changes every 200 ms and is polled every 50 ms: ok and not_modified polls.
      simulator: { port: 0, switches: 2, interval: '200ms' },
      sources: [{ name: 'fabric', type: 'csv-matrix', url: '{simulator}/counters', prefix: '/fabric', interval: '50ms' }],
      log_level: 'silent',
    });
    const running = await startProcess(config);
    try {
      // Some recorded history first, then a session that plays it at speed 1: paced batches.
      await vi.waitFor(() => expect(running.recorder!.stats.batches).toBeGreaterThanOrEqual(6), { timeout: 10_000 });
      const s = await (await fetch(`${running.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"start":"-1h"}' })).json() as { id: string };
      const ws = new WebSocket(`${running.url.replace('http', 'ws')}/api/v1/sessions/${s.id}/stream`);
      let batchFrames = 0;
      ws.on('message', (d: Buffer) => {
        if ((JSON.parse(String(d)) as { type: string }).type === 'batch') batchFrames++;
      });
      await vi.waitFor(() => expect(batchFrames).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
      await running.archive.writer!.rotate();
      await vi.waitFor(async () => expect(await readdir(cold)).toHaveLength(1), { timeout: 10_000 });
      expect((await fetch(`${running.url}/api/v1/archive`)).status).toBe(200);
      // The copy lands in the cold directory before the hook's run is counted: wait for the count.
      let text = '';
      await vi.waitFor(async () => {
        text = await (await fetch(`${running.url}/metrics`)).text();
        expect(text).toMatch(/^tapedeck_hook_runs_total\{hook="put",result="ok"\} /m);
      }, { timeout: 10_000 });
      const value = (series: string): number => {
        const line = text.split('\n').find((l) => l.startsWith(`${series} `));
        return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
      };
      expect(value('tapedeck_source_polls_total{source="fabric",result="ok"}')).toBeGreaterThan(0);
      expect(value('tapedeck_source_polls_total{source="fabric",result="not_modified"}')).toBeGreaterThan(0);
      expect(value('tapedeck_source_staleness_seconds{source="fabric"}')).toBeGreaterThanOrEqual(0);
      expect(value('tapedeck_hook_runs_total{hook="put",result="ok"}')).toBe(1);
      expect(value('tapedeck_puts_pending')).toBe(0);
      expect(value('tapedeck_archive_rotations_total')).toBe(1);
      expect(value('tapedeck_pacing_error_seconds_count')).toBeGreaterThanOrEqual(3);
      expect(value('tapedeck_session_frames_sent_total')).toBeGreaterThanOrEqual(batchFrames);
      expect(value('tapedeck_sessions_active')).toBe(1);
      expect(value('tapedeck_http_request_duration_seconds_count{method="GET",route="/api/v1/archive",status="200"}')).toBe(1);
      expect(value('tapedeck_http_request_duration_seconds_count{method="POST",route="/api/v1/sessions",status="201"}')).toBe(1);
      ws.close();
      expect(await promtoolCheck(text)).toEqual({ code: 0, stderr: '' });
      // /stats: the poller's cycle times and counts.
      const stats = (await (await fetch(`${running.url}/stats`)).json()) as { pollers: Record<string, { cycleMs: { p50: number; p99: number }; polls: number; retries: number; notModified: number }> };
      expect(stats.pollers.fabric).toMatchObject({ polls: expect.any(Number), retries: 0, notModified: expect.any(Number) });
      expect(stats.pollers.fabric!.notModified).toBeGreaterThan(0);
      expect(stats.pollers.fabric!.cycleMs.p99).toBeGreaterThan(0);
      expect(stats.pollers.fabric!.cycleMs.p99).toBeGreaterThanOrEqual(stats.pollers.fabric!.cycleMs.p50);
    } finally {
      await running.close();
    }
  });
});

describe('health, readiness, stats, OpenAPI', () => {
  it('answers /health, /ready (archive open), /stats with per-route percentiles', async () => {
    server = await startServer(randomBatches(1, 20));
    expect((await call('GET', '/health')).body).toEqual({ ok: true });
    const ready = await call('GET', '/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.ready).toBe(true);
    for (let i = 0; i < 5; i++) await call('GET', '/api/v1/archive');
    const stats = await call('GET', '/stats');
    expect(stats.body.routesMs['GET /api/v1/archive'].count).toBe(5);
    expect(stats.body.routesMs['GET /api/v1/archive'].p99).toBeGreaterThan(0);
    expect(stats.body.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('is not ready while a required source is stale, and says which; /api/v1/sources shows each one\'s health', async () => {
    const dir = await tmpDir();
    // Answers once, then fails with 500s: a source that was fresh and goes stale.
    const up = await upstream((n) => (n === 0 ? { body: '{"v":1}' } : { status: 500, body: 'upstream broke' }));
    const config = resolveConfig({
      archive_directory: dir,
      record: { spec: ['/**'], flush_interval: '100ms' },
      publish: { bind: '127.0.0.1:0' },
      sources: [
        // Nothing listens on port 9: the poller never succeeds.
        { name: 'dead', type: 'http-json', url: 'http://127.0.0.1:9/x', interval: '1s', max_staleness: '5s' },
        { name: 'flaky', type: 'http-json', url: up.url, interval: '50ms', backoff_initial: '10ms', backoff_max: '20ms', max_staleness: '1h' },
        { name: 'push', type: 'push' },
      ],
      log_level: 'silent',
    });
    const running = await startProcess(config);
    try {
      type Health = { name: string; status: string; last_success: string | null; last_error: { message: string } | null; consecutive_failures: number; staleness_ms: number | null };
      const health = async (name: string): Promise<Health> => ((await (await fetch(`${running.url}/api/v1/sources`)).json()) as { sources: Health[] }).sources.find((s) => s.name === name)!;
      await vi.waitFor(async () => expect((await health('flaky')).consecutive_failures).toBeGreaterThanOrEqual(2), { timeout: 5000 });
      // flaky succeeded once and is within its max_staleness: only dead is named.
      const res = await fetch(`${running.url}/ready`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('TPD_NOT_READY');
      expect(body.error.message).toMatch(/source:dead: no successful poll yet/);
      expect(body.error.message).not.toMatch(/push|flaky/);
      const first = await health('flaky');
      expect(first).toMatchObject({ status: 'failing', last_success: expect.stringMatching(/^\d{4}-/), last_error: { message: expect.stringMatching(/500/) } });
      await vi.waitFor(async () => expect((await health('flaky')).staleness_ms).toBeGreaterThan(first.staleness_ms! + 100), { timeout: 5000 });
      await vi.waitFor(async () => expect((await health('dead')).consecutive_failures).toBeGreaterThanOrEqual(1), { timeout: 5000 });
      expect(await health('dead')).toMatchObject({ status: 'failing', last_success: null, staleness_ms: null });
    } finally {
      await running.close();
      await up.close();
    }
  });

  it('serves an OpenAPI document listing every route with its error shape', async () => {
    server = await startServer(randomBatches(1, 5));
    const doc = (await call('GET', '/openapi.json')).body;
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/api/v1/sessions', '/api/v1/sessions/{id}', '/api/v1/archive', '/api/v1/state', '/api/v1/history', '/api/v1/ingest', '/metrics', '/ready']) {
      expect(Object.keys(doc.paths), p).toContain(p);
    }
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message']);
  });
});

describe('authentication and scopes', () => {
  it('lets a browser WebSocket pass its token as access_token', async () => {
    server = await startServer(randomBatches(1, 20), { tokens: TOKENS });
    const s = await call('POST', '/api/v1/sessions', TOKENS[0]!.token, { state: 'pause' });
    const base = `${server.url.replace('http', 'ws')}/api/v1/sessions/${s.body.id}/stream`;
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(base);
      ws.on('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      ws.on('error', () => undefined);
      ws.on('open', () => resolve(101));
    });
    expect(refused).toBe(401);
    const first = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`${base}?access_token=${TOKENS[0]!.token}`);
      ws.once('message', (d: Buffer) => {
        resolve(JSON.parse(d.toString()).type);
        ws.close();
      });
      ws.once('error', reject);
    });
    expect(first).toBe('state');
  });

  it('refuses to start an open server on a non-loopback address', async () => {
    const config = resolveConfig({ archive_directory: await tmpDir(), publish: { bind: '0.0.0.0:0' }, log_level: 'silent' });
    await expect(startProcess(config)).rejects.toMatchObject({ code: 'TPD_BAD_CONFIG', message: expect.stringMatching(/not a loopback address/) });
  });
});

describe('limits', () => {
  it('rate-limits per client with TPD_RATE_LIMITED and stays healthy', async () => {
    server = await startServer(randomBatches(1, 5), { rateLimit: { max: 5, timeWindowMs: 60_000 } });
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await call('GET', '/api/v1/archive')).status);
    expect(codes.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    const limited = await call('GET', '/api/v1/archive');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('TPD_RATE_LIMITED');
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('refuses bodies over the limit with 413 TPD_BODY_TOO_LARGE', async () => {
    server = await startServer(randomBatches(1, 5), { bodyLimitBytes: 1024 });
    const r = await call('POST', '/api/v1/sessions', undefined, { filter: ['/' + 'x'.repeat(900), '/' + 'y'.repeat(900)] });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('TPD_BODY_TOO_LARGE');
  });

  it('answers a request line or headers past the HTTP parser limit with 431 in the error shape', async () => {
    server = await startServer(randomBatches(1, 5));
    const res = await fetch(`${server.url}/api/v1/paths?glob=/${'x'.repeat(20_000)}`);
    expect(res.status).toBe(431);
    expect(await res.json()).toEqual({ error: { code: 'TPD_HEADERS_TOO_LARGE', message: expect.any(String) } });
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('answers a body of the wrong content type with 415 TPD_UNSUPPORTED_MEDIA_TYPE', async () => {
    server = await startServer(randomBatches(1, 5));
    const res = await fetch(`${server.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a,b' });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TPD_UNSUPPORTED_MEDIA_TYPE');
  });

  it('closes a WebSocket that sends a frame over the limit with 1009, and the session lives on', async () => {
    server = await startServer(randomBatches(1, 5), { wsMaxPayloadBytes: 4096 });
    const s = await call('POST', '/api/v1/sessions', undefined, { state: 'pause' });
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/sessions/${s.body.id}/stream`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => undefined);
    ws.send(JSON.stringify({ type: 'control', set: { pos: 'x'.repeat(8192) } }));
    expect(await closed).toBe(1009);
    expect((await call('GET', `/api/v1/sessions/${s.body.id}`)).status).toBe(200);
  });

  it('limits control frames per second per session stream', async () => {
    server = await startServer(randomBatches(1, 50));
    const s = await call('POST', '/api/v1/sessions', undefined, { state: 'pause' });
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/sessions/${s.body.id}/stream`);
    const errors: string[] = [];
    ws.on('message', (d: Buffer) => {
      const f = JSON.parse(d.toString());
      if (f.type === 'error') errors.push(f.code);
    });
    await new Promise((r) => ws.once('open', r));
    for (let i = 0; i < 200; i++) ws.send(JSON.stringify({ type: 'control', set: { speed: 1 + (i % 5) } }));
    const deadline = Date.now() + 5000;
    while (!errors.includes('TPD_RATE_LIMITED') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(errors).toContain('TPD_RATE_LIMITED');
    ws.close();
    // The session is still there and usable.
    expect((await call('PATCH', `/api/v1/sessions/${s.body.id}`, undefined, { speed: 2 })).status).toBe(200);
  });
});

describe('error table', () => {
  it('gives every code an HTTP status and a meaning, and docs/errors.md lists them all', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, e] of Object.entries(ERRORS)) {
      // Informational codes (info frames) carry 200; every error carries a 4xx/5xx status.
      if (!e.meaning.startsWith('Informational')) expect(e.status, code).toBeGreaterThanOrEqual(400);
      expect(e.meaning.length).toBeGreaterThan(10);
      expect(doc, code).toContain(`| \`${code}\` | ${e.status} |`);
    }
  });
});
