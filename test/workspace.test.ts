/**
 * The workspace store and its routes: bookmarks and named layouts beside the archive, kept
 * across restarts, validated, bounded by the workspace limits, refused whole on a full disk,
 * and never torn by a kill -9 (seeded kill moments, the seed printed).
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { Archive } from '../storage/index.js';
import { buildServer } from '../server/app.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { WORKSPACE_FILE, WorkspaceStore } from '../server/workspace/store.js';
import { api, startServer, type TestServer } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';
import { until } from './helpers/until.js';
import { rng } from './helpers/workload.js';

const T0 = Date.UTC(2026, 0, 1) * 1000;
const batches = Array.from({ length: 5 }, (_, i) => ({ ts: T0 + i * 1_000_000, updates: [['/a', i] as [string, number]] }));

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A server over the archive in `dir` (the workspace file lives there too). */
async function serveDir(dir: string): Promise<TestServer> {
  const archive = await Archive.open(dir, { flushIntervalMs: 0 });
  const app = await buildServer({ archive });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, archive, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, async close() { await app.close(); await archive.close(); } };
}

describe('bookmarks', () => {
  it('adds, lists in time order, keeps across a restart and deletes', async () => {
    const dir = await tmpDir('tapedeck-ws-');
    server = await serveDir(dir);
    const late = await api(server.url, 'POST', '/api/v1/bookmarks', { ts: T0 + 3_000_001, note: 'link flap', url: 'pos=1&speed=2' });
    expect(late.status).toBe(201);
    expect(late.body).toMatchObject({ ts: T0 + 3_000_001, time: '2026-01-01T00:00:03.000001Z', note: 'link flap', url: 'pos=1&speed=2' });
    expect(late.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(late.body.created).toMatch(/Z$/);
    const early = await api(server.url, 'POST', '/api/v1/bookmarks', { ts: '2026-01-01T00:00:01Z', end: T0 + 2_000_000, note: 'ünïcode ✓' });
    expect(early.status).toBe(201);
    expect(early.body).toMatchObject({ ts: T0 + 1_000_000, end: T0 + 2_000_000, endTime: '2026-01-01T00:00:02.000000Z', note: 'ünïcode ✓', url: '' });
    const listed = await api(server.url, 'GET', '/api/v1/bookmarks');
    expect(listed.body.bookmarks.map((b: { id: string }) => b.id)).toEqual([early.body.id, late.body.id]);

    await server.close();
    server = await serveDir(dir);
    expect((await api(server.url, 'GET', '/api/v1/bookmarks')).body).toEqual(listed.body);
    expect(await api(server.url, 'DELETE', `/api/v1/bookmarks/${early.body.id}`)).toEqual({ status: 204, body: undefined });
    expect(await api(server.url, 'DELETE', `/api/v1/bookmarks/${early.body.id}`)).toMatchObject({ status: 404, body: { error: { code: 'TPD_NOT_FOUND' } } });
    expect((await api(server.url, 'GET', '/api/v1/bookmarks')).body.bookmarks).toHaveLength(1);
  });

  it('refuses malformed bodies, an end before ts, an oversize note and a bookmark past the count limit', async () => {
    server = await startServer(batches);
    const bad = async (body: unknown, code: string, status: number): Promise<void> => {
      const r = await api(server!.url, 'POST', '/api/v1/bookmarks', body);
      expect({ status: r.status, code: r.body?.error?.code }, JSON.stringify(body).slice(0, 80)).toEqual({ status, code });
    };
    await bad({}, 'TPD_BAD_REQUEST', 400);
    await bad({ ts: -1 }, 'TPD_BAD_REQUEST', 400);
    await bad({ ts: 1.5 }, 'TPD_BAD_REQUEST', 400);
    await bad({ ts: 1, extra: true }, 'TPD_BAD_REQUEST', 400);
    await bad({ ts: 1, note: 7 }, 'TPD_BAD_REQUEST', 400);
    await bad({ ts: 'not a time' }, 'TPD_BAD_ARGUMENT', 400);
    await bad({ ts: 10, end: 9 }, 'TPD_BAD_ARGUMENT', 400);
    // Within the character limit but past the byte limit: 4-byte characters.
    await bad({ ts: 1, note: '😀'.repeat(SERVER_LIMITS.bookmarkNoteBytesMax / 4 + 1) }, 'TPD_BODY_TOO_LARGE', 413);
    await bad({ ts: 1, note: 'x'.repeat(SERVER_LIMITS.bookmarkNoteBytesMax + 1) }, 'TPD_BAD_REQUEST', 400);
    await bad({ ts: 1, url: 'é'.repeat(SERVER_LIMITS.bookmarkUrlBytesMax / 2 + 1) }, 'TPD_BODY_TOO_LARGE', 413);
    const r = await fetch(`${server.url}/api/v1/bookmarks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"ts":' });
    expect(r.status).toBe(400);
    expect((await api(server.url, 'GET', '/api/v1/bookmarks')).body.bookmarks).toEqual([]);

    // Concurrent adds up to the limit all land (one write at a time), then one more is refused.
    const adds = await Promise.all(Array.from({ length: SERVER_LIMITS.workspaceBookmarksMax }, (_, i) => api(server!.url, 'POST', '/api/v1/bookmarks', { ts: i })));
    expect(adds.every((a) => a.status === 201)).toBe(true);
    await bad({ ts: 1 }, 'TPD_BAD_ARGUMENT', 400);
    const listed = (await api(server.url, 'GET', '/api/v1/bookmarks')).body.bookmarks as Array<{ ts: number }>;
    expect(listed.map((b) => b.ts)).toEqual(Array.from({ length: SERVER_LIMITS.workspaceBookmarksMax }, (_, i) => i));
  });
});

describe('layouts', () => {
  it('creates, replaces, lists, reads and deletes a named layout', async () => {
    server = await startServer(batches);
    const layout = { panels: [{ paths: ['/a', '/b'], unit: 'pct' }], nested: { deep: [1, null, 'x'] } };
    expect(await api(server.url, 'PUT', '/api/v1/layouts/Core%20outage%20(d%C3%ADa%202)', { layout })).toMatchObject({ status: 201, body: { name: 'Core outage (día 2)' } });
    const again = await api(server.url, 'PUT', '/api/v1/layouts/Core%20outage%20(d%C3%ADa%202)', { layout: { ...layout, v: 2 } });
    expect(again.status).toBe(200);
    expect((await api(server.url, 'GET', '/api/v1/layouts/Core%20outage%20(d%C3%ADa%202)')).body).toMatchObject({ name: 'Core outage (día 2)', layout: { ...layout, v: 2 } });
    expect((await api(server.url, 'GET', '/api/v1/layouts')).body.layouts).toMatchObject([{ name: 'Core outage (día 2)', bytes: JSON.stringify({ ...layout, v: 2 }).length }]);
    expect((await api(server.url, 'DELETE', '/api/v1/layouts/Core%20outage%20(d%C3%ADa%202)')).status).toBe(204);
    expect(await api(server.url, 'GET', '/api/v1/layouts/Core%20outage%20(d%C3%ADa%202)')).toMatchObject({ status: 404, body: { error: { code: 'TPD_NOT_FOUND' } } });
    expect(await api(server.url, 'DELETE', '/api/v1/layouts/nope')).toMatchObject({ status: 404, body: { error: { code: 'TPD_NOT_FOUND' } } });
  });

  it('refuses bad names, non-object layouts, oversize layouts and a layout past the count limit', async () => {
    server = await startServer(batches);
    const put = async (name: string, body: unknown): Promise<{ status: number; code?: string }> => {
      const r = await api(server!.url, 'PUT', `/api/v1/layouts/${name}`, body);
      return { status: r.status, ...(r.body?.error ? { code: r.body.error.code } : {}) };
    };
    for (const name of ['%20lead', '.hidden', 'a%2Fb', 'x'.repeat(65), '%00', 'tab%09']) expect(await put(name, { layout: {} }), name).toEqual({ status: 400, code: 'TPD_BAD_REQUEST' });
    for (const body of [{ layout: [] }, { layout: 'x' }, { layout: null }, {}, { layout: {}, more: 1 }]) expect(await put('ok', body), JSON.stringify(body)).toEqual({ status: 400, code: 'TPD_BAD_REQUEST' });
    const big = { blob: 'x'.repeat(SERVER_LIMITS.workspaceLayoutBytesMax) };
    expect(await put('big', { layout: big })).toEqual({ status: 413, code: 'TPD_BODY_TOO_LARGE' });
    const huge = { blob: 'x'.repeat(SERVER_LIMITS.workspaceLayoutBytesMax * 4) };
    expect(await put('huge', { layout: huge })).toEqual({ status: 413, code: 'TPD_BODY_TOO_LARGE' });
    for (let i = 0; i < SERVER_LIMITS.workspaceLayoutsMax; i++) expect((await put(`l${i}`, { layout: { i } })).status).toBe(201);
    expect(await put('one-more', { layout: {} })).toEqual({ status: 400, code: 'TPD_BAD_ARGUMENT' });
    // Replacing an existing name is not a new layout.
    expect(await put('l0', { layout: { i: 'again' } })).toEqual({ status: 200 });
  });
});

describe('the workspace file', () => {
  it('moves a damaged file aside and starts empty, and drops a temp file left by a crash', async () => {
    const dir = await tmpDir('tapedeck-ws-');
    await writeFile(join(dir, WORKSPACE_FILE), '{"version":1,"bookmarks":[{"id":"x"}],"layouts":[]}');
    await writeFile(join(dir, `${WORKSPACE_FILE}.tmp`), '{"half');
    const warned: string[] = [];
    const store = await WorkspaceStore.open(dir, { warn: (_o, msg) => warned.push(msg) });
    expect(store.listBookmarks()).toEqual([]);
    expect(warned).toHaveLength(1);
    const names = await readdir(dir);
    expect(names.filter((n) => n.startsWith(`${WORKSPACE_FILE}.damaged-`))).toHaveLength(1);
    expect(names).not.toContain(`${WORKSPACE_FILE}.tmp`);
    expect(names).not.toContain(WORKSPACE_FILE);
    await store.addBookmark({ ts: 1, note: '', url: '' }, 2);
    expect(JSON.parse(await readFile(join(dir, WORKSPACE_FILE), 'utf8'))).toMatchObject({ version: 1, bookmarks: [{ ts: 1 }] });
  });

  it('starts (empty, logged) when the workspace file cannot be read, and refuses writes with TPD_IO', async () => {
    const dir = await tmpDir('tapedeck-ws-');
    await mkdir(join(dir, WORKSPACE_FILE)); // a directory where the file should be: EISDIR on read
    server = await serveDir(dir);
    expect((await api(server.url, 'GET', '/api/v1/bookmarks')).body).toEqual({ bookmarks: [] });
    expect(await api(server.url, 'POST', '/api/v1/bookmarks', { ts: 1 })).toMatchObject({ status: 500, body: { error: { code: 'TPD_IO' } } });
    expect((await api(server.url, 'GET', '/api/v1/bookmarks')).body).toEqual({ bookmarks: [] });
    expect((await api(server.url, 'GET', '/api/v1/archive')).status).toBe(200);
  });

  it('keeps every acknowledged change through kill -9 at seeded random moments', async () => {
    const seed = scheduleSeed('WORKSPACE_CRASH_SEED', 'workspace kill -9');
    const r = rng(seed);
    const dir = await tmpDir('tapedeck-ws-crash-');
    const live = new Set<string>();
    const layoutTurn = new Map<string, number>();
    for (let round = 0; round < 10; round++) {
      const killAfter = 1 + Math.floor(r() * 120);
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'workspace-child.ts'), dir, String(round * 1_000_000)], { stdio: ['ignore', 'pipe', 'inherit'] });
      const lines: string[] = [];
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        lines.push(...parts);
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await until(() => lines.length >= killAfter || child.exitCode !== null, 60_000, `${killAfter} acknowledged changes`);
      child.kill('SIGKILL');
      await exited;
      let inflightDelete: string | undefined;
      for (const line of lines) {
        const [op, a, b] = line.split(' ') as [string, string, string | undefined];
        if (op === 'add') live.add(a);
        else if (op === 'del') live.delete(a);
        else if (op === 'put') layoutTurn.set(a, Number(b));
      }
      const store = await WorkspaceStore.open(dir);
      const have = new Set(store.listBookmarks().map((b) => b.id));
      // A change written but killed before it was acknowledged may be there too: at most one
      // more bookmark, or the oldest one gone (a delete in flight).
      const missing = [...live].filter((id) => !have.has(id));
      const extra = [...have].filter((id) => !live.has(id));
      expect(missing.length + extra.length, `round ${round} (kill after ${killAfter})`).toBeLessThanOrEqual(1);
      if (missing.length === 1) inflightDelete = missing[0];
      if (inflightDelete !== undefined) live.delete(inflightDelete);
      for (const id of extra) live.add(id);
      for (const [name, turn] of layoutTurn) expect((store.getLayout(name)?.layout as { turn: number }).turn).toBeGreaterThanOrEqual(turn);
      for (const l of store.listLayouts()) layoutTurn.set(l.name, (l.layout as { turn: number }).turn);
      expect((await readdir(dir)).filter((n) => n.includes('.damaged-'))).toEqual([]);
    }
    await rm(dir, { recursive: true, force: true });
  }, 120_000);
});

describe('a full disk', () => {
  const tmpfs = useTmpfs('tapedeck-ws-tmpfs-', 'workspace disk-full test');

  it('refuses a change with 507 TPD_DISK_FULL, keeps the workspace as it was, and takes changes again once there is room', async (ctx: TestContext) => {
    if (!tmpfs.mounted) ctx.skip();
    const dir = join(tmpfs.dir, 'archive');
    await mkdir(dir);
    server = await serveDir(dir);
    expect((await api(server.url, 'POST', '/api/v1/bookmarks', { ts: 1, note: 'before' })).status).toBe(201);
    const filler = await fillDisk(tmpfs.dir);
    const refused = await api(server.url, 'POST', '/api/v1/bookmarks', { ts: 2, note: 'x'.repeat(2000) });
    expect(refused).toMatchObject({ status: 507, body: { error: { code: 'TPD_DISK_FULL' } } });
    expect((await api(server.url, 'GET', '/api/v1/bookmarks')).body.bookmarks.map((b: { note: string }) => b.note)).toEqual(['before']);
    expect(JSON.parse(await readFile(join(dir, WORKSPACE_FILE), 'utf8')).bookmarks).toHaveLength(1);
    expect(await readdir(dir)).not.toContain(`${WORKSPACE_FILE}.tmp`);
    await rm(filler);
    expect((await api(server.url, 'POST', '/api/v1/bookmarks', { ts: 2, note: 'after' })).status).toBe(201);
  });
});
