/**
 * Every door a glob comes in by refuses a malformed one with TPD_BAD_GLOB, and says so when
 * well-formed globs match no recorded path: HTTP queries, sessions (create and control
 * frames), the CLI. (record.spec at start: test/config.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import WebSocket from 'ws';
import { recordingServer } from './helpers/recording-server.js';
import { tmpDir } from './helpers/tmp.js';
import { tapedeckArgs } from './helpers/built.js';

const execFileP = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const r = await execFileP(process.execPath, tapedeckArgs(...args));
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

type Srv = Awaited<ReturnType<typeof recordingServer>>;
let srv: Srv;

async function get(path: string): Promise<{ status: number; body: Record<string, unknown>; text: string; warning: string | undefined }> {
  const res = await request(`${srv.url}${path}`);
  const text = await res.body.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch { /* NDJSON or CSV */ }
  const w = res.headers['tapedeck-warning'];
  return { status: res.statusCode, body, text, warning: typeof w === 'string' ? w : undefined };
}

async function post(path: string, doc: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${srv.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

const q = encodeURIComponent;
const MALFORMED = ['[', '/fabric/sw-00?', '/a**b', '/x/{a,b}', 'fabric/*', '/' + 'a'.repeat(1100), '/a'.repeat(65)];

beforeEach(async () => {
  srv = await recordingServer();
  // A fresh server per test (tmpDir removes its archive after each). Deep paths: the kind a glob of repeated ** backtracked on for minutes.
  const updates: Record<string, number> = { '/q/a': 1, '/q/b': 2, [`${'/d'.repeat(40)}/leaf`]: 3 };
  const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ ts: 1_763_000_000, updates }) });
  expect(res.statusCode).toBe(200);
  await res.body.dump();
  await srv.recorder!.flush();
});

afterEach(async () => {
  await srv.close();
});

describe('globs at every edge', () => {
  it('HTTP queries answer 400 TPD_BAD_GLOB for a malformed glob, whichever query and whichever of several', async () => {
    for (const g of MALFORMED) {
      for (const path of [`/api/v1/paths?glob=${q(g)}`, `/api/v1/state?glob=/q/*&glob=${q(g)}`, `/api/v1/state?at=now&glob=${q(g)}`, `/api/v1/history?glob=${q(g)}`]) {
        const r = await get(path);
        expect(r.status, `${path.slice(0, 60)}`).toBe(400);
        expect((r.body.error as { code: string }).code).toBe('TPD_BAD_GLOB');
      }
    }
    const r = await get(`/api/v1/paths?glob=${q('/a**b')}`);
    expect((r.body.error as { message: string }).message).toBe('glob "/a**b" mixes "**" into the segment "a**b": "**" must be a whole segment');
    const many = await get(`/api/v1/paths?${Array(257).fill('glob=/q').join('&')}`);
    expect([many.status, (many.body.error as { code: string }).code]).toEqual([400, 'TPD_BAD_GLOB']);
  });

  it('answers a hostile glob of repeated ** with a non-matching tail at once, and the right paths', async () => {
    const hostile = `${'/**'.repeat(63)}/nope`;
    expect((await get(`/api/v1/paths?glob=${q(hostile)}`)).body).toMatchObject({ paths: [], count: 0 });
    const matching = `${'/**'.repeat(63)}/leaf`;
    expect((await get(`/api/v1/paths?glob=${q(matching)}`)).body).toMatchObject({ paths: [`${'/d'.repeat(40)}/leaf`], count: 1 });
  });

  it('says when well-formed globs match no recorded path: a warning with the empty answer', async () => {
    const none = await get('/api/v1/paths?glob=/nope/*');
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ paths: [], count: 0, truncated: false, warning: { code: 'TPD_NO_MATCH', message: 'no recorded path matches "/nope/*"' } });
    const state = await get('/api/v1/state?glob=/nope/*&glob=/zip');
    expect(state.body).toMatchObject({ values: {}, warning: { code: 'TPD_NO_MATCH', message: 'no recorded path matches "/nope/*", "/zip"' } });
    const at = await get('/api/v1/state?at=now&glob=/nope/*');
    expect(at.body).toMatchObject({ values: {}, warning: { code: 'TPD_NO_MATCH' } });
    const hist = await get('/api/v1/history?glob=/nope/*');
    expect([hist.status, hist.text, hist.warning]).toEqual([200, '', 'TPD_NO_MATCH: no recorded path matches "/nope/*"']);
    // A glob that matches: no warning anywhere.
    expect((await get('/api/v1/paths?glob=/q/*')).body).toEqual({ paths: ['/q/a', '/q/b'], count: 2, truncated: false });
    expect((await get('/api/v1/state?glob=/q/*')).body.warning).toBeUndefined();
    expect((await get('/api/v1/state?at=now&glob=/q/*')).body.warning).toBeUndefined();
    expect((await get('/api/v1/history?glob=/q/*')).warning).toBeUndefined();
    // No glob at all asks for everything: never a warning.
    expect((await get('/api/v1/paths')).body.warning).toBeUndefined();
  });

  it('sessions: a malformed filter is 400 TPD_BAD_GLOB, one matching nothing is created with a warning', async () => {
    for (const g of MALFORMED) {
      const r = await post('/api/v1/sessions', { state: 'pause', filter: ['/q/*', g] });
      expect(r.status, g.slice(0, 20)).toBe(400);
      expect((r.body.error as { code: string }).code).toBe('TPD_BAD_GLOB');
    }
    const none = await post('/api/v1/sessions', { state: 'pause', filter: ['/nope/**'] });
    expect(none.status).toBe(201);
    expect(none.body.warning).toEqual({ code: 'TPD_NO_MATCH', message: 'no recorded path matches "/nope/**"' });
    const some = await post('/api/v1/sessions', { state: 'pause', filter: ['/q/*'] });
    expect([some.status, some.body.warning]).toEqual([201, undefined]);
    for (const s of [none, some]) await request(`${srv.url}/api/v1/sessions/${String(s.body.id)}`, { method: 'DELETE' }).then((r) => r.body.dump());
  });

  it('sessions: a control frame with a filter gets an error frame (TPD_BAD_GLOB when malformed) and the stream goes on', async () => {
    const s = await post('/api/v1/sessions', { state: 'pause', filter: ['/q/*'] });
    const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/sessions/${String(s.body.id)}/stream`);
    const errors: Array<{ code: string; control?: string }> = [];
    let waiting: (() => void) | undefined;
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as { type: string; code: string };
      if (f.type === 'error') {
        errors.push(f);
        waiting?.();
      }
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const nextError = (): Promise<void> => new Promise((resolve) => { waiting = resolve; });
    let e = nextError();
    ws.send(JSON.stringify({ type: 'control', set: { filter: ['['] } }));
    await e;
    e = nextError();
    ws.send(JSON.stringify({ type: 'control', set: { filter: '/q/*' } })); // not a list
    await e;
    e = nextError();
    ws.send(JSON.stringify({ type: 'control', set: { filter: ['/q/*'] } }));
    await e;
    expect(errors.map((x) => x.code)).toEqual(['TPD_BAD_GLOB', 'TPD_BAD_GLOB', 'TPD_BAD_CONTROL']);
    expect(errors[2]?.control).toBe('filter');
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.terminate(); // abrupt: the session stays and still answers
    await closed;
    expect((await get(`/api/v1/sessions/${String(s.body.id)}`)).status).toBe(200);
  });

  it('CLI: export and inspect refuse a malformed glob (exit 1); export of globs matching nothing exits 3 and writes no file', async () => {
    await srv.recorder!.flush();
    const dir = await tmpDir();
    const out = join(dir, 'x.ndjson');
    const bad = await cli('export', '--archive', srv.dir, '--glob', '/q/*', '--glob', '[', '--out', out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^tapedeck: TPD_BAD_GLOB: glob "\[" does not start with "\/"/);
    expect(existsSync(out)).toBe(false);
    const none = await cli('export', '--archive', srv.dir, '--glob', '/nope/*', '--out', out);
    expect(none.code).toBe(3);
    expect(none.stderr).toBe(`tapedeck: TPD_NO_MATCH: no recorded path matches "/nope/*" in ${srv.dir}; nothing written to ${out}\n`);
    expect(existsSync(out)).toBe(false);
    const ok = await cli('export', '--archive', srv.dir, '--glob', '/q/*', '--out', out);
    expect([ok.code, ok.stderr]).toEqual([0, `exported 1 batches to ${out}\nits SHA-256 is in ${out}.sha256\n`]);
    const inspect = await cli('inspect', srv.dir, '--paths', '--glob', '/a**b');
    expect(inspect.code).toBe(1);
    expect(inspect.stderr).toMatch(/TPD_BAD_GLOB: glob "\/a\*\*b" mixes/);
  });
});
