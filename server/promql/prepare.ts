/**
 * What a server prepares for the query API right after it starts, in the background, the
 * way Prometheus loads its head block's index before it reports ready (docs/prometheus.md,
 * "Performance"): the sidecar indexes of the sealed files a dashboard's range reads (those
 * that end within promqlPrepareSpanMs of the archive's newest file) and the series catalog.
 * Without it a fresh process's first query did both (a day of 10 000 series: hundreds of
 * milliseconds).
 *
 * Never answered from half-built state: the catalog is built synchronously (a selection
 * finds it whole or builds it itself), and a query that needs a sidecar index being loaded
 * waits for that load (storage/series-index/store.ts). /ready says `promql` is not ready
 * meanwhile. Archives past promqlPrepareCatalogPathsMax paths build their catalog at their
 * first query instead (its memory is one label set a path).
 *
 * Then, given the server (`warmUp`), the query path's warm-up: a few read-only queries of
 * one series through the real routes, over loopback connections to the server's own
 * listener (warm-up-client.ts: socket, HTTP parser, route, parse, select, evaluate, JSON,
 * reply), so that V8 has compiled the code a user's first query runs before /ready says
 * ready, as a JVM server warms up. Bounded by promqlWarmUpMs (each query's `timeout` is
 * what is left), never counted in the request metrics or /stats (isWarmUpRequest), skipped
 * when no series has values in the newest day.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Archive } from '../../storage/index.js';
import type { FileEntry } from '../../storage/file-list.js';
import { seriesIndexOf, type SeriesIndexStore } from '../../storage/series-index/store.js';
import { seriesCacheOf } from '../../storage/series-read.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';
import { SERVER_LIMITS } from '../limits.js';
import { prepareCatalog } from './catalog.js';
import { NoAnswerInTime, warmUpClient, type WarmUpClient, type WarmUpRequest } from './warm-up-client.js';
import { metricOfPath, type Metric } from './labels.js';
import { isLabelName, isMetricName } from '../../protocol/prom-text-lex.js';

interface Preparation {
  done: boolean;
  detail: string;
  finished: Promise<void>;
}

const preparations = new WeakMap<Archive, Preparation>();

/**
 * Starts the preparation of `archive` (once); resolves when it ends, whatever it found. With
 * no sidecar to load (an archive without sealed files) and no `warmUp` (or nothing it could
 * run over: no data, none local), it is done before
 * this returns: the catalog alone is one synchronous step, so such a server is ready as soon
 * as it starts. A warm-up never fails the preparation: whatever it meets, /ready then says
 * ready, with what it did in the check's detail.
 */
export function startPromqlPreparation(archive: Archive, warmUp?: WarmUp): Promise<void> {
  const known = preparations.get(archive);
  if (known) return known.finished;
  const p: Preparation = { done: false, detail: 'loading the series catalog and sidecar indexes', finished: Promise.resolve() };
  preparations.set(archive, p);
  const files = filesToPrepare(archive.files);
  const failed = (err: unknown): void => {
    // Queries do the work themselves then; a closed archive has nothing to answer anyway.
    p.detail = `not prepared (${(err as Error).message ?? String(err)}): the first query prepares`;
    if (!archive.isClosed) archive.logger.warn({ err: p.detail }, 'PromQL preparation failed');
  };
  const warm = async (): Promise<void> => {
    if (!warmUp || archive.isClosed) return;
    p.detail = `${p.detail}; ${await warmUpQueryPath(archive, warmUp)}`;
  };
  // Nothing to warm up over (no data, or none local): as without a warm-up.
  const noWarmUp = warmUp === undefined ? undefined : warmUpRange(archive.files);
  if (files.length === 0 && (warmUp === undefined || typeof noWarmUp === 'string')) {
    try {
      p.detail = catalogStep(archive, 0) + (typeof noWarmUp === 'string' ? `; ${noWarmUp}` : '');
    } catch (err) {
      failed(err);
    }
    p.done = true;
    return p.finished;
  }
  p.finished = loadIndexes(archive, files).then((indexes) => {
    p.detail = catalogStep(archive, indexes);
  }).then(warm, failed).catch(failed).finally(() => {
    p.done = true;
  });
  return p.finished;
}

/** /ready's check for the query API: absent when no preparation was started for `archive`. */
export function promqlReadiness(archive: Archive): Array<{ check: string; ok: boolean; detail: string }> {
  const p = preparations.get(archive);
  return p ? [{ check: 'promql', ok: p.done, detail: p.detail }] : [];
}

/** The sealed local files whose sidecars are loaded: ending within promqlPrepareSpanMs of the newest, newest first. */
export function filesToPrepare(files: readonly FileEntry[]): FileEntry[] {
  let newestUs = -Infinity;
  for (const f of files) if (f.lastTs !== null && f.lastTs > newestUs) newestUs = f.lastTs;
  const fromUs = newestUs - SERVER_LIMITS.promqlPrepareSpanMs * 1000;
  return files
    .filter((f) => f.sealed && f.location === 'local' && f.lastTs !== null && f.lastTs >= fromUs)
    .sort((a, b) => b.seq - a.seq)
    .slice(0, STORAGE_LIMITS.seriesIndexOpenMax);
}

/** Loads the sidecar indexes of `files`; how many were usable. */
async function loadIndexes(archive: Archive, files: readonly FileEntry[]): Promise<number> {
  // After the start's own work (listening, sources): this is background work.
  await new Promise<void>((resolve) => setImmediate(resolve));
  const store = seriesIndexOf(archive);
  let indexes = 0;
  for (const f of files) {
    if (archive.isClosed) throw new Error('archive closed');
    if (await store.indexOf(f)) indexes++;
  }
  return indexes;
}

/** Builds the series catalog (unless the archive is past promqlPrepareCatalogPathsMax); what /ready then says. */
function catalogStep(archive: Archive, indexes: number): string {
  if (archive.isClosed) throw new Error('archive closed');
  if (archive.paths.length > SERVER_LIMITS.promqlPrepareCatalogPathsMax) return `${indexes} sidecar indexes loaded; the series catalog of ${archive.paths.length} paths is built at the first query (promqlPrepareCatalogPathsMax)`;
  const paths = prepareCatalog(archive);
  return `${indexes} sidecar indexes loaded, series catalog of ${paths} paths built`;
}

/** The server whose query routes the warm-up asks, and a token for them when it has tokens. */
export interface WarmUp {
  app: FastifyInstance;
  /** Sent as `Authorization: Bearer`: a token with the read (or admin) scope; absent on an open server. */
  token?: string;
}

/**
 * What the warm-up needs of a server with `tokens`: undefined when it has tokens and none may
 * read (a warm-up would be refused, and counted as failed authentications).
 */
export function warmUpOf(app: FastifyInstance, tokens: ReadonlyArray<{ token: string; scopes: readonly string[] }>): WarmUp | undefined {
  if (tokens.length === 0) return { app };
  const t = tokens.find((x) => x.scopes.includes('read') || x.scopes.includes('admin'));
  return t ? { app, token: t.token } : undefined;
}

/** The warm-up's requests carry this header with a secret of this process: no client can send it. */
const WARM_UP_HEADER = 'tapedeck-warm-up';
const WARM_UP_SECRET = randomBytes(16).toString('hex');
const WARM_UP_SECRET_BYTES = Buffer.from(WARM_UP_SECRET);

/** Whether a request is the warm-up's own (request metrics, /stats and the rate limit leave it out). */
export function isWarmUpRequest(req: { headers: IncomingHttpHeaders }): boolean {
  const h = req.headers[WARM_UP_HEADER];
  if (typeof h !== 'string') return false;
  // In constant time: how long a wrong guess takes says nothing of the secret. Header values
  // are Latin-1: one byte a character, whatever a client sends.
  const b = Buffer.from(h, 'latin1');
  return b.length === WARM_UP_SECRET_BYTES.length && timingSafeEqual(b, WARM_UP_SECRET_BYTES);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** `name{a="1",b="2"}` selecting exactly `m` (every label), or undefined when a label is not plain text. */
function selectorOf(m: Metric): string | undefined {
  let name = '';
  const matchers: string[] = [];
  for (const [n, v] of m.labels) {
    if (!isLabelName(n) || CONTROL.test(v)) return undefined;
    if (n === '__name__' && isMetricName(v)) name = v;
    else matchers.push(`${n}="${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
  }
  return `${name}{${matchers.join(',')}}`;
}

interface WarmUpQuery {
  url: '/api/v1/query' | '/api/v1/query_range';
  query: string;
}

/** A dashboard's kinds of query over one series: a selector, a rate, a sum by, a topk; range and instant. */
function queriesOf(selector: string, m: Metric): WarmUpQuery[] {
  const by = m.labels.find(([n]) => n !== '__name__')?.[0];
  const rate = `rate(${selector}[5m])`;
  return [
    { url: '/api/v1/query_range', query: selector },
    { url: '/api/v1/query_range', query: rate },
    { url: '/api/v1/query_range', query: by ? `sum by (${by}) (${rate})` : `sum(${rate})` },
    { url: '/api/v1/query_range', query: `topk(5, ${selector})` },
    { url: '/api/v1/query', query: selector },
    { url: '/api/v1/query', query: rate },
  ];
}

/** Instant queries up to this long a URL are sent by GET (the routes' other form); longer ones, and range queries, as a form POST as Grafana sends them. */
const GET_URL_CHARS_MAX = 2_000;

/** One warm-up request; its status and how many series it answered. */
async function ask(w: WarmUp, client: WarmUpClient, q: WarmUpQuery, range: { startS: number; endS: number; stepS: number }, timeoutMs: number): Promise<{ status: number; series: number; error: string }> {
  const form = new URLSearchParams({ query: q.query, timeout: `${Math.max(1, Math.floor(timeoutMs))}ms` });
  if (q.url === '/api/v1/query') form.set('time', String(range.endS));
  else for (const [k, v] of [['start', range.startS], ['end', range.endS], ['step', range.stepS]] as const) form.set(k, String(v));
  const headers: Record<string, string> = { [WARM_UP_HEADER]: WARM_UP_SECRET };
  if (w.token !== undefined) headers.authorization = `Bearer ${w.token}`;
  const getUrl = `${q.url}?${form.toString()}`;
  const req: WarmUpRequest = q.url === '/api/v1/query' && getUrl.length <= GET_URL_CHARS_MAX
    ? { method: 'GET', url: getUrl, headers }
    : { method: 'POST', url: q.url, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() };
  const res = await client.send(req, timeoutMs);
  let body: { data?: { result?: unknown[] }; error?: unknown };
  try {
    body = JSON.parse(res.body) as typeof body;
  } catch {
    // Not the query API's JSON (node:http's own refusal of a request, say): its text, for the log.
    body = { error: res.body.slice(0, 200) };
  }
  return { status: res.status, series: body.data?.result?.length ?? 0, error: String(body.error ?? '') };
}

const STOPPED = 'warm-up stopped:';
/** How far back a query reads before its start: the default lookback and the warm-up's rate window. */
const READ_BACK_S = 300;

/**
 * The warm-up's range: the newest day (promqlPrepareSpanMs at most), 720 steps as a dashboard
 * panel asks, starting after every file that is not local (and the read back before it): a
 * query over a remote file would fetch it through the get hook, over a missing one fail.
 */
export function warmUpRange(files: readonly FileEntry[]): { startS: number; endS: number; stepS: number } | string {
  let newestUs = -Infinity;
  let notLocalUs = -Infinity;
  for (const f of files) {
    if (f.lastTs !== null && f.lastTs > newestUs) newestUs = f.lastTs;
    // A file not local is read up to its end; an end not known reaches the newest data.
    if (f.location !== 'local') notLocalUs = Math.max(notLocalUs, f.lastTs ?? Infinity);
  }
  if (newestUs === -Infinity) return 'no warm-up: no data';
  const endS = Math.ceil(newestUs / 1e6);
  const startS = Math.max(endS - Math.min(86_400, SERVER_LIMITS.promqlPrepareSpanMs / 1000), Math.floor(notLocalUs / 1e6) + READ_BACK_S + 1);
  if (!(startS < endS)) return 'no warm-up: the newest data is not local';
  return { startS, endS, stepS: Math.max(1, Math.round((endS - startS) / 720)) };
}

/**
 * Path ids the warm-up tries: the newest defined first, then spread over the dictionary by
 * the golden ratio's multiples (other metrics, other value kinds; no stride that a regular
 * layout of series could line up with), each once.
 */
function candidateIds(paths: number): number[] {
  const ids = new Set<number>();
  for (let k = 0; ids.size < Math.min(paths, SERVER_LIMITS.promqlWarmUpSeriesTriedMax); k++) {
    ids.add(k === 0 ? paths - 1 : Math.floor(((k * 0.6180339887498949) % 1) * paths));
  }
  return [...ids];
}

/**
 * The chunk decoders (LZ4, packed values, regular times) run over the newest day's chunks of
 * promqlWarmUpDecodeSeries series spread over the dictionary, read from the sidecars without
 * the series cache (nothing is kept). A user's first query reads a series no query read yet
 * (a day: about 29 chunks); the queries below read only 1 to 3 series, too few chunks for V8
 * to optimize the decoders, which the first such query then ran unoptimized. How many chunks
 * it decoded.
 */
async function warmDecoders(archive: Archive, store: SeriesIndexStore, range: { startS: number; endS: number }, leftMs: () => number): Promise<number> {
  const paths = archive.paths.length;
  const ids = new Set<number>();
  for (let k = 1; ids.size < Math.min(paths, SERVER_LIMITS.promqlWarmUpDecodeSeries) && k <= 4 * SERVER_LIMITS.promqlWarmUpDecodeSeries; k++) {
    ids.add(Math.floor(((k * 0.6180339887498949 + 0.5) % 1) * paths));
  }
  const all = [...ids];
  let chunks = 0;
  for (const f of filesToPrepare(archive.files)) {
    for (let i = 0; i < all.length; i += SERVER_LIMITS.promqlStreamSeriesBatch) {
      if (archive.isClosed || leftMs() <= 0) return chunks;
      const r = await store.read(f, all.slice(i, i + SERVER_LIMITS.promqlStreamSeriesBatch), range.startS * 1e6, range.endS * 1e6, seriesCacheOf(archive), false);
      chunks += r?.runs.length ?? 0;
    }
  }
  return chunks;
}

/**
 * The query path's warm-up: promqlWarmUpRounds rounds of queriesOf over the newest day, each
 * round over one series that has values there (of other metric names where the candidates
 * have them: their values may be of other kinds, decoded by other code), within
 * promqlWarmUpMs. Never throws: what it did, for /ready's detail (and the log).
 */
export async function warmUpQueryPath(archive: Archive, w: WarmUp): Promise<string> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const leftMs = (): number => SERVER_LIMITS.promqlWarmUpMs - (performance.now() - t0);
  let queries = 0;
  let held = 0;
  let decoded = 0;
  let client: WarmUpClient | undefined;
  const done = (what: string, failed = false): string => {
    const cpu = process.cpuUsage(cpu0);
    client?.close();
    const out = `${what} (${queries} queries${client ? ` ${client.describe()}` : ''}, ${held} sidecars held, ${decoded} chunks decoded, ${Math.round(performance.now() - t0)} ms, ${Math.round((cpu.user + cpu.system) / 1000)} ms of CPU)`;
    if (!archive.isClosed) archive.logger[failed ? 'warn' : 'info']({ warmUp: out }, 'PromQL query path warm-up');
    return out;
  };
  const range = warmUpRange(archive.files);
  if (typeof range === 'string') return done(range);
  // The chunk bytes of the newest day's sidecars in memory, as a wide read would hold them
  // (seriesIndexHeldBytesMax): a series read for the first time then slices memory. Oldest
  // first, so that the newest stay held when they do not all fit.
  const store = seriesIndexOf(archive);
  for (const f of filesToPrepare(archive.files).reverse()) {
    if (archive.isClosed || leftMs() <= 0) break;
    if (await store.hold(f)) held++;
  }
  const stopped = async (q: WarmUpQuery): Promise<string | { series: number }> => {
    if (archive.isClosed) return 'warm-up stopped: archive closed';
    if (leftMs() <= 0) return 'warm-up stopped at promqlWarmUpMs';
    const r = await ask(w, client as WarmUpClient, q, range, leftMs());
    queries++;
    return r.status === 200 ? r : `${STOPPED} ${r.status} ${r.error}`;
  };
  try {
    decoded = await warmDecoders(archive, store, range, leftMs);
    // main.ts starts the preparation just before it listens: the warm-up waits for the listener.
    client = await warmUpClient(w.app, Math.min(leftMs(), SERVER_LIMITS.promqlWarmUpListenWaitMs));
    // Series with values in the range, one per metric name.
    const rounds: WarmUpQuery[][] = [];
    const names = new Set<string>();
    for (const id of candidateIds(archive.paths.length)) {
      if (rounds.length >= SERVER_LIMITS.promqlWarmUpRounds) break;
      const m = metricOfPath(archive.paths[id] as string);
      const selector = selectorOf(m);
      const name = m.labels.find(([n]) => n === '__name__')?.[1] ?? '';
      if (selector === undefined || names.has(name)) continue;
      const qs = queriesOf(selector, m);
      const r = await stopped(qs[0] as WarmUpQuery);
      // A path the query API refuses as a selector (too long a query, say): the next one.
      if (typeof r === 'string' && r.startsWith(`${STOPPED} 400 `)) continue;
      if (typeof r === 'string') return done(r, !r.includes('promqlWarmUpMs'));
      if (r.series === 0) continue;
      names.add(name);
      rounds.push(qs);
    }
    if (rounds.length === 0) return done('no warm-up: no series with values in the newest day among those tried');
    for (let k = 0; k < SERVER_LIMITS.promqlWarmUpRounds; k++) {
      // Each round on a connection of its own, then kept alive, as a dashboard's browser does.
      client.reconnect();
      for (const q of rounds[k % rounds.length] as WarmUpQuery[]) {
        const r = await stopped(q);
        if (typeof r === 'string') return done(r, !r.includes('promqlWarmUpMs'));
      }
    }
    return done(`query path warmed up over ${rounds.length} series`);
  } catch (err) {
    // A request with no answer in time was given what was left of promqlWarmUpMs.
    if (err instanceof NoAnswerInTime) return done('warm-up stopped at promqlWarmUpMs');
    return done(`warm-up failed: ${(err as Error).message ?? String(err)}`, true);
  }
}
