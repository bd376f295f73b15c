/**
 * The query path's warm-up at start (server/promql/prepare.ts, warmUpQueryPath): given the
 * server, a few queries of one series of the newest day run through the routes before /ready
 * says ready, over loopback connections to the server's own listener (real sockets, as a
 * user's requests come; in process only when the server does not listen, saying so), without
 * a trace in the request metrics, /stats or the rate limit, and without changing an answer or
 * a byte of the archive; a server with tokens warms up with one that may read; it reads no
 * file that is not local (a remote one would be fetched); an empty archive, one without
 * numbers, a failing warm-up, one past promqlWarmUpMs and one whose request never answers
 * all reach ready, saying so.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Archive } from '../storage/index.js';
import { ColdStorage, type ColdEvent } from '../storage/cold.js';
import { buildServer } from '../server/app.js';
import { seriesToPath } from '../protocol/prom-path.js';
import { isWarmUpRequest, promqlReadiness, startPromqlPreparation, warmUpOf } from '../server/promql/prepare.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { seriesCacheOf } from '../storage/series-read.js';
import { QUERIES, T0_MS, ask, build, ready, reference, serve, stopServed } from './helpers/promql-prepare.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
afterEach(async () => {
  await stopServed();
  Object.assign(limits, saved);
});
// Whatever the machine's load, these warm-ups end by themselves (the limit has a test of its own).
beforeEach(() => {
  limits.promqlWarmUpMs = 60_000;
});

/** Each file of the archive directory (sidecars included) and its SHA-256. */
async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[join(e.parentPath, e.name).slice(dir.length)] = createHash('sha256').update(await readFile(join(e.parentPath, e.name))).digest('hex');
  }
  return out;
}

/** Requests the server counted for `route` in /metrics (its duration histogram) and in /stats. */
async function counted(url: string, route: string): Promise<{ metrics: number; stats: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let metrics = 0;
  for (const line of text.split('\n')) if (line.startsWith('tapedeck_http_request_duration_seconds_count{') && line.includes(`route="${route}"`)) metrics += Number(line.split(' ').at(-1));
  const stats = (await (await fetch(`${url}/stats`)).json()) as { routesMs: Record<string, { count: number }> };
  let n = 0;
  for (const [k, v] of Object.entries(stats.routesMs)) if (k.endsWith(` ${route}`)) n += v.count;
  return { metrics, stats: n };
}

const WARMED = /; query path warmed up over [1-3] series \((\d+) queries over (\d+) loopback connections? to 127\.0\.0\.1:(\d+), \d+ sidecars held, (\d+) chunks decoded, \d+ ms, \d+ ms of CPU\)$/;
const WARMED_IN_PROCESS = /; query path warmed up over [1-3] series \((\d+) queries in process \(inject: not listening within promqlWarmUpListenWaitMs\), \d+ sidecars held, (\d+) chunks decoded, \d+ ms, \d+ ms of CPU\)$/;

/**
 * The connections `app`'s server accepts from now on (their client ports), and for each
 * warm-up request whether it came on a socket the server accepted: a real TCP socket, not
 * inject's stand-in (which says 127.0.0.1 too).
 */
interface WarmUpSeen {
  method: string;
  realSocket: boolean;
  acceptedHere: boolean;
  port: number | undefined;
}
function watchWarmUp(app: FastifyInstance): WarmUpSeen[] {
  const accepted = new Set<number>();
  const warmUps: WarmUpSeen[] = [];
  app.server.on('connection', (sock: Socket) => void accepted.add(sock.remotePort as number));
  app.addHook('onRequest', async (req) => {
    const sock = req.raw.socket;
    if (isWarmUpRequest(req)) warmUps.push({ method: req.method, realSocket: sock instanceof Socket, acceptedHere: accepted.has(sock.remotePort as number), port: sock.remotePort });
  });
  return warmUps;
}

describe('the query path warm-up at start', () => {
  it('runs before /ready says ready; not counted in request metrics, /stats or the rate limit; answers and archive bytes unchanged', async () => {
    const seed = scheduleSeed('PROMQL_PREPARE_SEED', 'promql-warm-up');
    const dir = await build(seed);
    const want = await reference(dir);
    // Two copies opened for writing as a recording server opens them: one warmed up, one not.
    const [warmDir, coldDir] = [await tmpDir(), await tmpDir()];
    await cp(dir, warmDir, { recursive: true });
    await cp(dir, coldDir, { recursive: true });
    // Exactly the user's requests below: the queries, two more, /metrics and /stats three times (/ready is not limited).
    let watched: WarmUpSeen[] = [];
    const s = await serve(warmDir, { writable: true, rateLimit: { max: QUERIES.length + 8, timeWindowMs: 3_600_000 }, hooks: (app) => void (watched = watchWarmUp(app)) });
    let done = false;
    const finished = startPromqlPreparation(s.a, { app: s.app }).then(() => {
      done = true;
    });
    const during = await ready(s.url);
    if (!done) expect(during.status).toBe(503);
    await finished;
    const r = await ready(s.url);
    expect(r.status, r.promql?.detail).toBe(200);
    expect(r.promql?.detail, `seed ${seed}`).toMatch(WARMED);
    expect(r.promql?.detail, 'the three sealed files of the day: their sidecars\' chunks in memory').toContain(', 3 sidecars held,');
    const [, queries, connections, port] = (WARMED.exec(r.promql?.detail ?? '') ?? []).map(Number);
    expect(queries).toBeGreaterThanOrEqual(6 * SERVER_LIMITS.promqlWarmUpRounds);
    // Over real sockets to the server's own port, a connection a round (and the series search's),
    // both forms of the routes; every one of them a warm-up request (the user's came later).
    expect(port).toBe((s.app.server.address() as { port: number }).port);
    expect(connections).toBeGreaterThanOrEqual(SERVER_LIMITS.promqlWarmUpRounds);
    expect(watched.length).toBe(queries);
    expect(watched.every((x) => x.realSocket && x.acceptedHere), 'every warm-up request came on a connection the server accepted').toBe(true);
    expect(new Set(watched.map((x) => x.port)).size, 'on as many connections as the detail says').toBe(connections);
    expect(new Set(watched.map((x) => x.method))).toEqual(new Set(['GET', 'POST']));
    expect(await counted(s.url, '/api/v1/query_range'), 'the warm-up is not counted').toEqual({ metrics: 0, stats: 0 });
    for (const [i, query] of QUERIES.entries()) expect(await ask(s.url, query), `${query} (seed ${seed})`).toBe(want[i]);
    // A client cannot hide a request by sending the header: the secret is the process's.
    expect(await ask(s.url, QUERIES[0] as string, { 'tapedeck-warm-up': '0'.repeat(32) })).toBe(want[0]);
    expect(await ask(s.url, QUERIES[0] as string, { 'tapedeck-warm-up': '\u00e9'.repeat(32) }), 'a Latin-1 value of its length').toBe(want[0]);
    expect(await counted(s.url, '/api/v1/query_range'), "the user's queries are").toEqual({ metrics: QUERIES.length + 2, stats: QUERIES.length + 2 });
    expect(await counted(s.url, '/api/v1/query'), 'nor its instant queries').toEqual({ metrics: 0, stats: 0 });
    const past = await fetch(`${s.url}/api/v1/query_range`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ query: 'g', start: '1', end: '2', step: '1' }) });
    expect(past.status, 'the rate limit: the warm-up took none of it').toBe(429);
    await s.stop();
    const o = await serve(coldDir, { writable: true });
    await startPromqlPreparation(o.a);
    await o.stop();
    expect(await digests(warmDir), 'the same bytes as an archive opened without the warm-up').toEqual(await digests(coldDir));
  });

  it('decodes the newest day\'s chunks of promqlWarmUpDecodeSeries series first, keeping none of them in the series cache', async () => {
    const dir = await build(scheduleSeed('PROMQL_PREPARE_SEED', 'promql-warm-up-decode'));
    const cached: Array<{ decoded: number; entries: number; bytes: number }> = [];
    for (const n of [SERVER_LIMITS.promqlWarmUpDecodeSeries, 0]) {
      limits.promqlWarmUpDecodeSeries = n;
      const s = await serve(dir);
      await startPromqlPreparation(s.a, { app: s.app });
      const detail = (await ready(s.url)).promql?.detail ?? '';
      expect(detail).toMatch(WARMED);
      const c = seriesCacheOf(s.a);
      cached.push({ decoded: Number(WARMED.exec(detail)?.[4]), entries: c.entries, bytes: c.sizeBytes });
      await s.stop();
    }
    const [withDecode, without] = cached as [(typeof cached)[0], (typeof cached)[0]];
    // 31 paths, most of them over the three sealed files of the day: dozens of chunks.
    expect(withDecode.decoded).toBeGreaterThanOrEqual(30);
    expect(without.decoded).toBe(0);
    expect({ entries: withDecode.entries, bytes: withDecode.bytes }, 'the queries\' series alone are cached').toEqual({ entries: without.entries, bytes: without.bytes });
  });

  it('needs a token that may read on a server with tokens; with one, it warms up', async () => {
    const dir = await build(scheduleSeed('PROMQL_PREPARE_SEED', 'promql-warm-up-tokens'));
    const tokens = [{ name: 'collector', token: 'ingest-token-0123456789', scopes: ['ingest' as const] }, { name: 'grafana', token: 'read-token-0123456789', scopes: ['read' as const] }];
    const s = await serve(dir, { tokens });
    expect(warmUpOf(s.app, tokens.slice(0, 1)), 'none may read: no warm-up (it would be refused)').toBeUndefined();
    expect(warmUpOf(s.app, [])).toEqual({ app: s.app });
    const w = warmUpOf(s.app, tokens);
    expect(w?.token).toBe('read-token-0123456789');
    await startPromqlPreparation(s.a, w);
    expect((await ready(s.url)).promql?.detail).toMatch(WARMED);
  });

  it('an empty archive, or one without numbers, is ready without a warm-up', async () => {
    const empty = await tmpDir();
    await (await Archive.open(empty, { flushIntervalMs: 0 })).close();
    const e = await serve(empty);
    await startPromqlPreparation(e.a, { app: e.app });
    expect(await ready(e.url)).toEqual({ status: 200, promql: { check: 'promql', ok: true, detail: expect.stringMatching(/^0 sidecar indexes loaded, series catalog of 0 paths built; no warm-up: no data( \(0 queries, .*\))?$/) } });
    const texts = await tmpDir();
    const w = await Archive.open(texts, { flushIntervalMs: 0 });
    for (let k = 0; k < 5; k++) w.writer!.append([['/s/name', `text ${k}`], [seriesToPath({ name: 'info', labels: { job: 'x' } }), `v${k}`]], (T0_MS + k * 15_000) * 1000);
    await w.writer!.flush();
    await w.close();
    const t = await serve(texts);
    await startPromqlPreparation(t.a, { app: t.app });
    const r = await ready(t.url);
    expect(r.status).toBe(200);
    expect(r.promql?.detail).toMatch(/; no warm-up: no series with values in the newest day among those tried \(2 queries/);
  });

  it('a failing warm-up, or one past promqlWarmUpMs, still reaches ready; the server answers as before', async () => {
    const seed = scheduleSeed('PROMQL_PREPARE_SEED', 'promql-warm-up-fails');
    const dir = await build(seed);
    const want = await reference(dir);
    let failures = 0;
    const s = await serve(dir, {
      hooks: (app) => app.addHook('preHandler', async (req) => {
        if (isWarmUpRequest(req) && ++failures > 2) throw new Error('warm-up request broken');
      }),
    });
    await startPromqlPreparation(s.a, { app: s.app });
    const r = await ready(s.url);
    expect(r.status).toBe(200);
    expect(r.promql?.detail).toMatch(/; warm-up stopped: 500 .*\(3 queries/);
    for (const [i, query] of QUERIES.entries()) expect(await ask(s.url, query), `${query} (seed ${seed})`).toBe(want[i]);
    // An answer that is not the query API's JSON stops it the same way, saying what came.
    const h = await serve(dir, {
      hooks: (app) => app.addHook('onRequest', async (req, reply) => {
        if (isWarmUpRequest(req)) await reply.code(502).type('text/html').send('<html>bad gateway</html>');
      }),
    });
    await startPromqlPreparation(h.a, { app: h.app });
    expect((await ready(h.url)).promql?.detail).toMatch(/; warm-up stopped: 502 <html>bad gateway<\/html> \(1 queries over 1 loopback connection to /);
    limits.promqlWarmUpMs = 0;
    const z = await serve(dir);
    await startPromqlPreparation(z.a, { app: z.app });
    expect((await ready(z.url)).promql?.detail).toMatch(/; warm-up stopped at promqlWarmUpMs \(0 queries/);
    expect((await ready(z.url)).status).toBe(200);
  });

  it('reads no file that is not local: remote files of the newest day are not fetched back', async () => {
    const HOUR_US = 3_600_000_000;
    const t0Us = T0_MS * 1000;
    const base = await tmpDir();
    const cold = join(base, 'cold');
    await mkdir(cold);
    const a = await Archive.open(join(base, 'archive'), { flushIntervalMs: 0, clockUs: () => t0Us + 10 * HOUR_US });
    const fix = resolve('test/fixtures/hooks');
    const c = await ColdStorage.start(a, { hooks: { put: { cmd: join(fix, 'put-copy.sh'), args: [cold] }, get: { cmd: join(fix, 'get-copy.sh'), args: [cold] } }, checkIntervalMs: 0, listIntervalMs: 0, retention: { maxAgeMs: 2 * 3_600_000, maxBytes: 0 } });
    const app = await buildServer({ archive: a, cold: c });
    try {
      // Three hours of a day, one file each: the first two shipped and evicted (older than 2 h).
      for (const h of [0, 5, 9]) {
        for (let k = 0; k < 100; k++) a.writer!.append([[seriesToPath({ name: 'g', labels: { i: String(k % 3) } }), k], ['/plain/x', k]], t0Us + h * HOUR_US + k * 15_000_000);
        const put = new Promise<ColdEvent>((done) => c.once('event', done));
        await a.writer!.rotate();
        expect(await put).toMatchObject({ type: 'put', ok: true });
      }
      await c.check();
      expect(a.files.map((f) => f.location)).toEqual(['remote', 'remote', 'local', 'local']);
      // This app never listens: the warm-up's requests go in process.
      limits.promqlWarmUpListenWaitMs = 0;
      await startPromqlPreparation(a, { app });
      expect(c.stats.fetched, 'no get').toBe(0);
      expect(a.files.map((f) => f.location)).toEqual(['remote', 'remote', 'local', 'local']);
      const r = await app.inject({ method: 'GET', url: '/ready' });
      expect(r.statusCode).toBe(200);
      expect((r.json() as { checks: Array<{ check: string; detail: string }> }).checks.find((x) => x.check === 'promql')?.detail).toMatch(WARMED_IN_PROCESS);
    } finally {
      await app.close();
      await c.stop();
      await a.close();
    }
  });

  it('started before the server listens (as server/main.ts starts it), waits for the listener; in process when the server does not listen', async () => {
    const dir = await build(scheduleSeed('PROMQL_PREPARE_SEED', 'promql-warm-up-listen'));
    const a = await Archive.open(dir, { readonly: true });
    const app = await buildServer({ archive: a });
    const warmUps = watchWarmUp(app);
    try {
      const finished = startPromqlPreparation(a, { app });
      // What the preparation loads first (the sidecars) takes a moment: listen after it started.
      await new Promise((r) => setTimeout(r, 50));
      await app.listen({ port: 0, host: '127.0.0.1' });
      await finished;
      const detail = (await ready(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`)).promql?.detail ?? '';
      expect(detail).toMatch(WARMED);
      expect(warmUps.length).toBe(Number(WARMED.exec(detail)?.[1]));
      expect(warmUps.every((x) => x.realSocket && x.acceptedHere)).toBe(true);
    } finally {
      await app.close();
      await a.close();
    }
    limits.promqlWarmUpListenWaitMs = 100;
    const b = await Archive.open(dir, { readonly: true });
    const inProcess = await buildServer({ archive: b });
    const seen = watchWarmUp(inProcess);
    try {
      await startPromqlPreparation(b, { app: inProcess });
      const detail = promqlReadiness(b)[0]?.detail ?? '';
      expect(detail).toMatch(WARMED_IN_PROCESS);
      expect(seen.length).toBe(Number(WARMED_IN_PROCESS.exec(detail)?.[1]));
      expect(seen.some((x) => x.realSocket)).toBe(false);
    } finally {
      await inProcess.close();
      await b.close();
    }
  });

  it('a server on a wildcard address is warmed through the loopback of its family; one closed meanwhile ends it', async () => {
    const dir = await build(scheduleSeed('PROMQL_PREPARE_SEED', 'promql-warm-up-wildcard'));
    for (const [host, via] of [['0.0.0.0', '127.0.0.1:'], ['::', '[::1]:']] as const) {
      const a = await Archive.open(dir, { readonly: true });
      const app = await buildServer({ archive: a });
      const warmUps = watchWarmUp(app);
      try {
        await app.listen({ port: 0, host });
        await startPromqlPreparation(a, { app });
        const detail = promqlReadiness(a)[0]?.detail ?? '';
        expect(detail, host).toContain(` loopback connections to ${via}${(app.server.address() as { port: number }).port},`);
        expect(warmUps.length > 0 && warmUps.every((x) => x.realSocket && x.acceptedHere), host).toBe(true);
      } finally {
        await app.close();
        await a.close();
      }
    }
    // Closed while warming up (a shutdown right after the start): the preparation ends, nothing
    // hangs (the request in flight is answered 503 by the closing server, or the archive is closed).
    const a = await Archive.open(dir, { readonly: true });
    const app = await buildServer({ archive: a });
    let seen = 0;
    const closing = new Promise<void>((resolve) => app.addHook('onRequest', async (req) => {
      if (isWarmUpRequest(req) && ++seen === 5) resolve();
    }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const finished = startPromqlPreparation(a, { app });
    await closing;
    await app.close();
    await a.close();
    await finished;
    expect(promqlReadiness(a)[0]).toMatchObject({ ok: true, detail: expect.stringMatching(/; warm-up (stopped|failed): .* \(\d+ queries over \d+ loopback connections? to /) });
  });

  it('a warm-up request that never answers ends the warm-up at promqlWarmUpMs; the server is ready and answers', async () => {
    const seed = scheduleSeed('PROMQL_PREPARE_SEED', 'promql-warm-up-stuck');
    const dir = await build(seed);
    const want = await reference(dir);
    let release = (): void => undefined;
    const stuck = new Promise<void>((r) => {
      release = r;
    });
    let n = 0;
    const s = await serve(dir, {
      hooks: (app) => app.addHook('preHandler', async (req) => {
        if (isWarmUpRequest(req) && ++n === 4) await stuck;
      }),
    });
    try {
      limits.promqlWarmUpMs = 1_000;
      await startPromqlPreparation(s.a, { app: s.app });
      const r = await ready(s.url);
      expect(r.status).toBe(200);
      expect(r.promql?.detail).toMatch(/; warm-up stopped at promqlWarmUpMs \(\d+ queries over \d+ loopback connections? to /);
      for (const [i, query] of QUERIES.entries()) expect(await ask(s.url, query), `${query} (seed ${seed})`).toBe(want[i]);
    } finally {
      release();
    }
  });

  it('passes over a series the query API refuses as a selector (a query past promqlQueryCharsMax) to the next', async () => {
    const dir = await tmpDir();
    const w = await Archive.open(dir, { flushIntervalMs: 0 });
    // The newest defined path, tried first, has a label too long for a query of 1 000 characters.
    for (let k = 0; k < 5; k++) w.writer!.append([[seriesToPath({ name: 'g', labels: { i: 'a' } }), k], [seriesToPath({ name: 'long', labels: { v: 'x'.repeat(2000) } }), k]], (T0_MS + k * 15_000) * 1000);
    await w.writer!.flush();
    await w.close();
    limits.promqlQueryCharsMax = 1000;
    const s = await serve(dir);
    await startPromqlPreparation(s.a, { app: s.app });
    const r = await ready(s.url);
    expect(r.status).toBe(200);
    expect(r.promql?.detail).toMatch(WARMED);
  });
});
