import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Archive } from '../storage/archive.js';
import { ColdStorage, type ColdEvent, type ColdOptions } from '../storage/cold.js';
import { CATALOG_FILE } from '../storage/catalog.js';
import { isTapedeckError } from '../protocol/errors.js';
import { buildServer } from '../server/app.js';
import type { Batch } from '../protocol/value.js';
import { TestWs, api } from './helpers/server.js';
import { readAll, plain } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';

const FIX = resolve('test/fixtures/hooks');
const T0 = 1_700_000_000_000_000;
const storage = { flushIntervalMs: 0, imageFrequencyBytes: 4096 };
const fast = { attempts: 1, backoffInitialMs: 10, backoffMaxMs: 20, timeoutMs: 10_000 };

/** n batches 1 ms apart from batch index `from`, two paths each. */
function batches(from: number, n: number): Batch[] {
  return Array.from({ length: n }, (_, i) => ({ ts: T0 + (from + i) * 1000, updates: [['/a', from + i], ['/b', (from + i) / 4]] }));
}

interface Rig {
  dir: string;
  cold: string;
  log: string;
  hook(script: string): { cmd: string; args: string[] };
}

async function rig(): Promise<Rig> {
  const base = await tmpDir('tapedeck-cold-');
  const cold = join(base, 'cold');
  await mkdir(cold);
  return { dir: join(base, 'archive'), cold, log: join(base, 'calls.log'), hook: (script) => ({ cmd: join(FIX, script), args: [cold] }) };
}

const copyHooks = (r: Rig): ColdOptions['hooks'] => ({ put: r.hook('put-copy.sh'), get: r.hook('get-copy.sh'), list: r.hook('list-dir.sh') });

type FileEvent = Extract<ColdEvent, { name: string }>;

function nextEvent(c: ColdStorage, pred: (e: ColdEvent) => boolean): Promise<FileEvent> {
  return new Promise((resolve) => {
    const on = (e: ColdEvent): void => {
      if (!pred(e) || !('name' in e)) return;
      c.off('event', on);
      resolve(e);
    };
    c.on('event', on);
  });
}

function nextListEvent(c: ColdStorage, pred: (e: Extract<ColdEvent, { type: 'list' }>) => boolean): Promise<ColdEvent> {
  return new Promise((resolve) => {
    const on = (e: ColdEvent): void => {
      if (e.type !== 'list' || !pred(e)) return;
      c.off('event', on);
      resolve(e);
    };
    c.on('event', on);
  });
}

async function calls(r: Rig): Promise<string[]> {
  return (await readFile(r.log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
}

/** Writes the batches, then rotates and waits until put has shipped the rotated file. */
async function writeRotateShip(a: Archive, c: ColdStorage, bs: Batch[]): Promise<string> {
  for (const b of bs) a.writer!.append(b.updates, b.ts);
  await a.writer!.flush();
  const shipped = nextEvent(c, (e) => e.type === 'put');
  await a.writer!.rotate();
  const e = await shipped;
  expect(e).toMatchObject({ ok: true });
  return e.name;
}

const open: Array<{ c?: ColdStorage; a?: Archive; close?: () => Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) {
    await o.close?.();
    await o.c?.stop();
    await o.a?.close();
  }
});

async function start(r: Rig, opts: ColdOptions): Promise<{ a: Archive; c: ColdStorage }> {
  const a = await Archive.open(r.dir, storage);
  open.push({ a });
  const c = await ColdStorage.start(a, { checkIntervalMs: 0, listIntervalMs: 0, ...opts });
  open.push({ c });
  return { a, c };
}

/** Starts cold storage with `hooks` (retention on), rotates one small file and waits for its first put. */
async function rotateOnePut(r: Rig, hooks: ColdOptions['hooks']): Promise<{ a: Archive; c: ColdStorage; e: FileEvent }> {
  const { a, c } = await start(r, { hooks, policy: { put: fast }, retention: { maxAgeMs: 0, maxBytes: 1 } });
  a.writer!.append([['/x', 1]], T0);
  const done = nextEvent(c, (e) => e.type === 'put');
  await a.writer!.rotate();
  return { a, c, e: await done };
}

describe('put', () => {
  it('ships each rotated file in the background and records the put in the catalog', async () => {
    const r = await rig();
    const { a, c } = await start(r, { hooks: { put: r.hook('put-copy.sh') } });
    const name = await writeRotateShip(a, c, batches(0, 50));
    expect(await readFile(join(r.cold, name))).toEqual(await readFile(join(r.dir, name)));
    expect(c.putStatus(name)).toMatchObject({ status: 'done', error: null });
    expect(c.putStatus('current')).toBeUndefined();
    expect(c.stats.putsPending).toBe(0);
    await c.stop();
    await a.close();
    // A restart does not ship the file again: the status is in the catalog.
    const again = await start(r, { hooks: { put: r.hook('put-copy.sh') } });
    expect(again.a.catalog.puts()).toMatchObject([{ name, status: 'done' }]);
    await again.c.stop();
    expect(await calls(r)).toEqual([`put ${name}`]);
  });

  it('shows a failed put, retries it at the next check and keeps the file local until it succeeds', async () => {
    const r = await rig();
    const { a, c, e } = await rotateOnePut(r, { put: r.hook('put-flaky.sh') });
    expect(e).toMatchObject({ ok: false, error: expect.stringMatching(/status 3: cold storage unreachable \(attempt 1\)/) });
    const name = e.name;
    expect(c.putStatus(name)).toMatchObject({ status: 'failed', attempts: 1 });
    expect(a.catalog.puts()).toMatchObject([{ name, status: 'failed' }]);
    expect(c.stats).toMatchObject({ putsPending: 1, hooks: { failures: { put: 1 }, runs: { put: { failed: 1 } } } });

    // Each check queues the put again; retention never removes an unshipped file.
    // (The file is looked for before each check, while it is unshipped: once the third put
    // succeeds, the same check may evict it before this test looks.)
    for (const attempt of [2, 3]) {
      expect((await stat(join(r.dir, name))).isFile()).toBe(true);
      const next = nextEvent(c, (x) => x.type === 'put');
      await c.check();
      if (attempt === 2) expect((await stat(join(r.dir, name))).isFile()).toBe(true);
      expect(await next).toMatchObject({ ok: attempt === 3 });
    }
    expect(c.putStatus(name)).toMatchObject({ status: 'done', attempts: 3 });
    const evicted = nextEvent(c, (x) => x.type === 'evict');
    await c.check();
    expect(await evicted).toEqual({ type: 'evict', name });
    expect(await readdir(r.dir)).not.toContain(name);
    expect(a.files.find((f) => f.name === name)?.location).toBe('remote');
  });
});

describe('list and put', () => {
  it('does not take a listed copy as shipped when the put was cut short (stop or crash)', async () => {
    const r = await rig();
    // First run: the put hangs; the process stops while it runs, leaving a partial copy.
    const a1 = await Archive.open(r.dir, storage);
    const c1 = await ColdStorage.start(a1, { hooks: { put: { cmd: join(FIX, 'hang.sh'), args: [join(r.cold, '..', 'put.pid')] } }, policy: { put: fast }, checkIntervalMs: 0, listIntervalMs: 0 });
    a1.writer!.append([['/x', 1]], T0);
    await a1.writer!.rotate();
    const name = a1.files[0]!.name;
    await vi.waitFor(async () => expect(await readFile(join(r.cold, '..', 'put.pid'), 'utf8')).toMatch(/\d/));
    // While the hook runs, the catalog already holds the put: a crash now leaves it there.
    expect(a1.catalog.puts()).toContainEqual(expect.objectContaining({ name, status: 'pending' }));
    await writeFile(join(r.cold, name), 'the first bytes only');
    await c1.stop();
    await a1.close();
    // Second run: list shows the partial copy while the put (hanging again) runs. Nothing
    // may call the file shipped.
    const { a, c } = await start(r, { hooks: { put: { cmd: join(FIX, 'hang.sh'), args: [join(r.cold, '..', 'put2.pid')] }, list: r.hook('list-dir.sh') }, policy: { put: fast }, retention: { maxAgeMs: 0, maxBytes: 1 } });
    await vi.waitFor(async () => expect(await readFile(join(r.cold, '..', 'put2.pid'), 'utf8')).toMatch(/\d/));
    await c.refreshList();
    expect(c.putStatus(name)).toMatchObject({ status: 'pending' });
    await c.check();
    expect(c.putStatus(name)?.status).not.toBe('done');
    expect(a.files.find((f) => f.name === name)?.location).toBe('local');
    expect((await stat(join(r.dir, name))).isFile()).toBe(true);
  });

  it('does not take a listed partial copy from a failed put as shipped: the file stays local', async () => {
    const r = await rig();
    const { a, c, e } = await rotateOnePut(r, { put: r.hook('put-partial.sh'), list: r.hook('list-dir.sh') });
    expect(e).toMatchObject({ ok: false });
    expect((await readdir(r.cold))).toContain(e.name); // the partial copy list will show
    await c.refreshList();
    expect(c.putStatus(e.name)).toMatchObject({ status: 'failed' });
    await c.check(); // retention: only shipped files may go
    expect((await stat(join(r.dir, e.name))).isFile()).toBe(true);
    expect(a.files.find((f) => f.name === e.name)?.location).toBe('local');
  });
});

describe('get', () => {
  it('fetches an evicted file once for many concurrent readers, who all read every batch in order', async () => {
    const r = await rig();
    const { a, c } = await start(r, { hooks: copyHooks(r), retention: { maxAgeMs: 0, maxBytes: 1 }, fetchedKeepMs: 60_000 });
    const all = [...batches(0, 300), ...batches(300, 300)];
    const n1 = await writeRotateShip(a, c, all.slice(0, 300));
    for (const b of all.slice(300)) a.writer!.append(b.updates, b.ts);
    await a.writer!.flush();
    await c.check();
    expect(a.files.map((f) => f.location)).toEqual(['remote', 'local']);

    const readers = Array.from({ length: 8 }, () => readAll(a.cursor()));
    for (const got of await Promise.all(readers)) expect(plain(got)).toStrictEqual(all);
    expect((await calls(r)).filter((l) => l.startsWith('get'))).toEqual([`get ${n1}`]);
    expect(a.files[0]?.location).toBe('local');
    // Recently fetched: the next check keeps it.
    await c.check();
    expect(a.files[0]?.location).toBe('local');
  });

  it('fails reads of a file whose get hangs past its timeout with a clear error', async () => {
    const r = await rig();
    const { a, c } = await start(r, {
      hooks: { put: r.hook('put-copy.sh'), get: { cmd: join(FIX, 'hang.sh'), args: [join(r.dir, '..', 'get.pid')] } },
      policy: { get: { ...fast, timeoutMs: 300 } },
      retention: { maxAgeMs: 0, maxBytes: 1 },
    });
    const name = await writeRotateShip(a, c, batches(0, 20));
    await c.check();
    const err = await readAll(a.cursor()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TPD_FILE_UNAVAILABLE', message: `file ${name} could not be fetched from cold storage: the get hook timed out after 300 ms (details in the server log)` });
    expect(c.stats.hooks.runs.get.timedOut).toBe(1);
  });

  it('fails reads of a file whose get fails with a clear error instead of hanging', async () => {
    const r = await rig();
    const { a, c } = await start(r, { hooks: { put: r.hook('put-copy.sh'), get: { cmd: join(FIX, 'fail.sh'), args: [] } }, policy: { get: fast }, retention: { maxAgeMs: 0, maxBytes: 1 } });
    const name = await writeRotateShip(a, c, batches(0, 20));
    await c.check();
    const err = await readAll(a.cursor()).catch((e: unknown) => e);
    expect(isTapedeckError(err, 'TPD_FILE_UNAVAILABLE')).toBe(true);
    // Clients learn what happened, never the hook's path or its stderr (those are logged).
    expect((err as Error).message).toBe(`file ${name} could not be fetched from cold storage: the get hook exited with status 7 (details in the server log)`);
    expect(((err as Error).cause as Error).message).toBe(`${join(FIX, 'fail.sh')} exited with status 7: bucket tapedeck-cold does not exist`);
    expect(c.stats.hooks.failures.get).toBe(1);
    expect(await readdir(r.dir)).not.toContain(`${name}.fetching`);
  });
});

describe('list', () => {
  it('merges remote files into the archive after a reindex; they are fetched, indexed and read in order', async () => {
    const r = await rig();
    const all = [...batches(0, 200), ...batches(200, 200), ...batches(400, 100)];
    const { a, c } = await start(r, { hooks: copyHooks(r), retention: { maxAgeMs: 0, maxBytes: 1 } });
    const names = [await writeRotateShip(a, c, all.slice(0, 200)), await writeRotateShip(a, c, all.slice(200, 400))];
    for (const b of all.slice(400)) a.writer!.append(b.updates, b.ts);
    await a.writer!.flush();
    await c.check();
    expect(a.files.map((f) => f.location)).toEqual(['remote', 'remote', 'local']);
    await c.stop();
    await a.close();

    // The catalog (and with it every trace of the remote files and their put status) goes.
    for (const s of ['', '-wal', '-shm']) await rename(join(r.dir, CATALOG_FILE + s), join(r.dir, `old${s}`)).catch(() => undefined);
    const b = await start(r, { hooks: copyHooks(r) });
    expect(b.a.files.map((f) => [f.seq, f.name, f.location])).toEqual([[0, names[0], 'remote'], [1, names[1], 'remote'], [2, 'current', 'local']]);
    expect(b.a.files[1]?.lastTs).toBe(all[399]!.ts);
    // Seek into the middle of the second remote file: it is fetched and indexed first.
    const cur = b.a.cursor();
    await cur.seek({ ts: all[249]!.ts });
    expect(plain(await readAll(cur))).toStrictEqual(all.slice(250));
    expect(plain(await readAll(b.a.cursor()))).toStrictEqual(all);
    expect(b.a.files.map((f) => f.location)).toEqual(['local', 'local', 'local']);
    expect(b.a.files[0]).toMatchObject({ firstTs: all[0]!.ts, lastTs: all[199]!.ts });
    // Put status re-derived from list: nothing is shipped again.
    expect(b.c.putStatus(names[0] as string)?.status).toBe('done');
    expect((await calls(r)).filter((l) => l.startsWith('put'))).toHaveLength(2);
  });

  it('runs list periodically: a file that appears in cold storage joins the archive', async () => {
    const r = await rig();
    const first = await Archive.open(r.dir, storage);
    for (const b of batches(0, 10)) first.writer!.append(b.updates, b.ts);
    await first.writer!.rotate();
    const name = first.files[0]!.name;
    await first.close();
    const aside = join(r.dir, '..', name);
    await rename(join(r.dir, name), aside);
    for (const s of ['', '-wal', '-shm']) await rename(join(r.dir, CATALOG_FILE + s), join(r.dir, `old${s}`)).catch(() => undefined);
    const { a, c } = await start(r, { hooks: copyHooks(r), listIntervalMs: 20 });
    expect(a.files.map((f) => f.location)).toEqual(['local']);
    const added = nextListEvent(c, (e) => e.added > 0);
    await rename(aside, join(r.cold, name));
    expect(await added).toEqual({ type: 'list', names: 1, added: 1 });
    expect(a.files.map((f) => [f.seq, f.name, f.location])).toEqual([[0, name, 'remote'], [1, 'current', 'local']]);
    expect(plain(await readAll(a.cursor()))).toStrictEqual(batches(0, 10));
  });

  it('accepts only rotated file names from list; nothing else reaches the file system', async () => {
    const r = await rig();
    const first = await Archive.open(r.dir, storage);
    for (const b of batches(0, 10)) first.writer!.append(b.updates, b.ts);
    await first.writer!.rotate();
    for (const b of batches(10, 10)) first.writer!.append(b.updates, b.ts);
    await first.writer!.rotate();
    const gone = first.files[0]!.name;
    await first.close();
    // The oldest file and the catalog are gone; only list knows about the file.
    await rename(join(r.dir, gone), join(r.cold, gone));
    for (const s of ['', '-wal', '-shm']) await rename(join(r.dir, CATALOG_FILE + s), join(r.dir, `old${s}`)).catch(() => undefined);
    const { a, c } = await start(r, { hooks: { list: { cmd: join(FIX, 'list-bad.sh'), args: [gone] } } });
    expect(c.stats.listRejected).toBe(6);
    expect(a.files.map((f) => [f.seq, f.location])).toEqual([[0, 'remote'], [1, 'local'], [2, 'local']]);
    expect(a.files[0]?.name).toBe(gone);
    expect(await readdir(r.dir)).not.toContain('passwd');
    // No get hook: the remote file is reported, not fetched.
    await expect(readAll(a.cursor())).rejects.toThrow(`file ${gone} is remote and no get hook is configured`);
  });
});

async function serveHttp(a: Archive, cold: ColdStorage): Promise<string> {
  const app = await buildServer({ archive: a, cold });
  await app.listen({ port: 0, host: '127.0.0.1' });
  open.push({ close: () => app.close() });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

describe('sessions over evicted files', () => {
  it('replays across a file that was rotated, shipped, evicted and fetched back: every batch once, in order, with buffering info', async () => {
    const r = await rig();
    const { a, c } = await start(r, { hooks: copyHooks(r), retention: { maxAgeMs: 0, maxBytes: 1 } });
    const all = [...batches(0, 150), ...batches(150, 150), ...batches(300, 150)];
    await writeRotateShip(a, c, all.slice(0, 150));
    await writeRotateShip(a, c, all.slice(150, 300));
    for (const b of all.slice(300)) a.writer!.append(b.updates, b.ts);
    await a.writer!.flush();
    await c.check();
    expect(a.files.map((f) => f.location)).toEqual(['remote', 'remote', 'local']);

    const url = await serveHttp(a, c);
    // Three sessions at once: each waits (and is told so), the files are fetched once.
    const end = new Date((T0 + 449 * 1000) / 1000).toISOString();
    const sockets = await Promise.all([0, 1, 2].map(async () => {
      const s = await api(url, 'POST', '/api/v1/sessions', { speed: 'unlimited', end });
      expect(s.status).toBe(201);
      const ws = await TestWs.open(`${url}${s.body.stream as string}`, 'json');
      open.push({ close: async () => ws.close() });
      return ws;
    }));
    for (const ws of sockets) {
      expect(await ws.batches(all.length)).toStrictEqual(all);
      await ws.next((f) => f.type === 'end');
      expect(ws.frames.some((f) => f.type === 'batch' || f.type === 'batches')).toBe(false);
      const info = ws.frames.filter((f) => f.type === 'info').map((f) => f.code);
      expect(info).toEqual(['TPD_BUFFERING', 'TPD_BUFFERED', 'TPD_BUFFERING', 'TPD_BUFFERED']);
    }
    expect((await calls(r)).filter((l) => l.startsWith('get'))).toHaveLength(2);
  });

  it('tells a session that a fetch failed (a gap frame naming the file: playback crosses it) and keeps it alive', async () => {
    const r = await rig();
    const { a, c } = await start(r, { hooks: { put: r.hook('put-copy.sh'), get: { cmd: join(FIX, 'fail.sh'), args: [] } }, policy: { get: fast }, retention: { maxAgeMs: 0, maxBytes: 1 } });
    const name = await writeRotateShip(a, c, batches(0, 20));
    await c.check();
    const url = await serveHttp(a, c);
    const s = await api(url, 'POST', '/api/v1/sessions', { speed: 'unlimited' });
    const ws = await TestWs.open(`${url}${s.body.stream as string}`, 'json');
    open.push({ close: async () => ws.close() });
    await ws.next((f) => f.type === 'state'); // at the beginning
    const gap = await ws.next((f) => f.type === 'gap' || f.type === 'error');
    expect(gap).toMatchObject({ type: 'gap', files: [name], message: expect.stringContaining(`file ${name} could not be fetched from cold storage`) });
    expect((await ws.next((f) => f.type === 'state')).ts).toBe(gap.toUs);
    expect((await ws.next((f) => f.type === 'controls' && (f.controls as { state: string }).state === 'tail')).type).toBe('controls');
    expect(ws.closed).toBe(false);
  });
});
