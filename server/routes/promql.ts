/**
 * The Prometheus HTTP query API over the archive (docs/prometheus.md, "Query API"), so
 * Grafana's stock Prometheus data source and `promtool query` read Tapedeck:
 * /api/v1/query, /api/v1/query_range, /api/v1/series, /api/v1/labels,
 * /api/v1/label/<name>/values and /api/v1/status/buildinfo, by GET or by POST of an
 * application/x-www-form-urlencoded form (form values first, as Go's FormValue reads them).
 * Two more a Grafana data source asks, answered as a Prometheus that holds none:
 * /api/v1/metadata (no HELP, TYPE or UNIT is kept) and /api/v1/query_exemplars (no
 * exemplars are kept), each checking its parameters as Prometheus does.
 * Answers and errors have Prometheus' shapes and statuses; a refused token or a rate limit
 * still answers in Tapedeck's own error shape (they come before the route).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isTapedeckError } from '../../protocol/errors.js';
import { ERROR_BODY_SCHEMA } from '../ops/openapi.js';
import { percentEscapesDecode } from '../http-query.js';
import { SERVER_LIMITS } from '../limits.js';
import { CANCELED, clientGone } from '../client-gone.js';
import { DEFAULT_LOOKBACK_MS, runQuery } from '../promql/engine.js';
import { PromError, badData } from '../promql/errors.js';
import { errorJson, formatResultBytes, successJson } from '../promql/format.js';
import { Budget } from '../promql/load.js';
import { listLabelNames, listLabelValues, listSeries, type MetadataQuery } from '../promql/metadata.js';
import { parseQueryCachedSliced } from '../promql/parse-cache.js';
import { parseDurationParam, parseStepParam, parseTimeParam } from '../promql/params.js';

/** What /api/v1/status/buildinfo reports: the Prometheus whose PromQL the answers follow. */
export const PROMQL_COMPATIBLE_VERSION = '2.42.0';

const PROM_ERROR_SCHEMA = {
  type: 'object',
  required: ['status', 'errorType', 'error'],
  properties: { status: { const: 'error' }, errorType: { type: 'string' }, error: { type: 'string' } },
} as const;

const SCHEMA = {
  response: {
    200: { type: 'object', required: ['status', 'data'], properties: { status: { const: 'success' }, data: {} }, additionalProperties: true },
    '4xx': { anyOf: [PROM_ERROR_SCHEMA, ERROR_BODY_SCHEMA] },
    '5xx': { anyOf: [PROM_ERROR_SCHEMA, ERROR_BODY_SCHEMA] },
  },
};

/** Form bodies are small: a query and a few parameters. */
const FORM_BODY_BYTES_MAX = SERVER_LIMITS.promqlQueryCharsMax * 4;

/** Parameters of a request: form body values first, then the URL's (either may be absent). */
class Params {
  constructor(
    private readonly form: URLSearchParams | undefined,
    private readonly url: URLSearchParams | undefined,
  ) {}

  get(name: string): string | undefined {
    const v = this.form?.get(name) ?? null;
    if (v !== null) return v;
    return this.url?.get(name) ?? undefined;
  }

  all(name: string): string[] {
    return [...(this.form?.getAll(name) ?? []), ...(this.url?.getAll(name) ?? [])];
  }
}

function paramsOf(req: FastifyRequest): Params {
  const q = req.url.indexOf('?');
  return new Params(req.body instanceof URLSearchParams ? req.body : undefined, q < 0 ? undefined : new URLSearchParams(req.url.slice(q + 1)));
}

function send(reply: FastifyReply, status: number, body: string | Buffer): FastifyReply {
  return reply.status(status).header('content-type', 'application/json').send(body);
}

/**
 * Runs a handler; its PromErrors (and the archive's errors) answer in Prometheus' shape. The
 * handler gets the request's client-gone signal (server/client-gone.ts): an evaluation stops at its
 * next slice once the client has left, and gives its place in the gate back (499 canceled,
 * which nobody reads and nothing logs as an error).
 */
function handle(fn: (p: Params, signal: AbortSignal) => Promise<string | Buffer>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      return send(reply, 200, await fn(paramsOf(req), clientGone(reply)));
    } catch (err) {
      const e = asPromError(err, req);
      reply.header('tapedeck-error-code', e.code);
      return send(reply, e.status, errorJson(e.errorType, e.message));
    }
  };
}

function asPromError(err: unknown, req: FastifyRequest): PromError {
  if (err instanceof PromError) return err;
  if (isTapedeckError(err) && err.code === 'TPD_CANCELED') return new PromError('canceled', err.message);
  if (isTapedeckError(err)) {
    if (err.status >= 500) req.log.error({ code: err.code, err: err.cause ?? err }, 'query failed');
    const type = err.code === 'TPD_FILE_UNAVAILABLE' || err.code === 'TPD_ARCHIVE_CLOSED' ? 'unavailable' : err.status >= 500 ? 'internal' : err.status === 422 ? 'execution' : 'bad_data';
    return new PromError(type, err.message, err.code);
  }
  if (err instanceof RangeError) return new PromError('execution', `query too large to evaluate: ${err.message}`);
  req.log.error({ err }, 'query failed');
  return new PromError('internal', 'internal error', 'TPD_INTERNAL');
}

function required(p: Params, name: string): string {
  const v = p.get(name);
  if (v === undefined || v === '') throw badData(`invalid parameter "${name}": parameter is missing`);
  return v;
}

/**
 * The query's timeout: the request's `timeout`, at most promqlTimeoutMs. Zero or negative has
 * passed before the query starts: Prometheus answers 503 timeout, and so does this.
 */
function timeoutOf(p: Params): number {
  const t = p.get('timeout');
  const ms = t === undefined || t === '' ? SERVER_LIMITS.promqlTimeoutMs : parseDurationParam(t, 'timeout');
  if (ms <= 0) throw new PromError('timeout', 'query timed out in query queue');
  return Math.min(ms, SERVER_LIMITS.promqlTimeoutMs);
}

/** `lookback_delta`; zero or negative is the default, as in Prometheus (which takes it from 2.43). */
function lookbackOf(p: Params): number {
  const l = p.get('lookback_delta');
  const ms = l === undefined || l === '' ? DEFAULT_LOOKBACK_MS : parseDurationParam(l, 'lookback_delta');
  return ms > 0 ? ms : DEFAULT_LOOKBACK_MS;
}

/**
 * At most promqlConcurrentQueriesMax evaluations (queries and metadata requests) at once;
 * later ones are told to retry. A request whose client has left takes no place, and one
 * that leaves while evaluated gives its place back at its next slice (the evaluation's
 * Budget checks `signal`).
 */
class Gate {
  private running = 0;

  async run<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    if (signal.aborted) {
      CANCELED.waiting++;
      throw new PromError('canceled', 'query canceled: the client closed its connection');
    }
    if (this.running >= SERVER_LIMITS.promqlConcurrentQueriesMax) {
      throw new PromError('unavailable', `more than promqlConcurrentQueriesMax (${SERVER_LIMITS.promqlConcurrentQueriesMax}) queries at once; retry`);
    }
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
    }
  }
}

function metadataQuery(p: Params, signal: AbortSignal): MetadataQuery {
  const start = p.get('start');
  const end = p.get('end');
  const matches = p.all('match[]');
  if (matches.length > SERVER_LIMITS.promqlMatchersMax) {
    throw badData(`invalid parameter "match[]": ${matches.length} selectors, more than promqlMatchersMax (${SERVER_LIMITS.promqlMatchersMax})`);
  }
  return {
    matches,
    startMs: start === undefined || start === '' ? -Infinity : parseTimeParam(start, 'start'),
    endMs: end === undefined || end === '' ? Infinity : parseTimeParam(end, 'end'),
    signal,
  };
}

export const promqlRoutes: FastifyPluginAsync = async (app) => {
  // Prometheus clients POST their parameters as a form (Grafana does by default).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_BYTES_MAX }, (_req, body, done) => {
    if (!percentEscapesDecode(body as string)) {
      // Before the route: answered 400 TPD_BAD_REQUEST in Tapedeck's shape, as the query string's.
      done(Object.assign(new Error('malformed percent-encoding in the form body'), { statusCode: 400 }));
      return;
    }
    done(null, new URLSearchParams(body as string));
  });
  const gate = new Gate();
  const archive = app.archive;

  const query = handle(async (p, signal) => {
    const q = required(p, 'query');
    const time = p.get('time');
    const t = time === undefined || time === '' ? Date.now() : parseTimeParam(time, 'time');
    const r = await gate.run(signal, () => runQuery(archive, { query: q, startMs: t, endMs: t, stepMs: 0, lookbackMs: lookbackOf(p), timeoutMs: timeoutOf(p), signal }));
    return formatResultBytes(r);
  });
  const queryRange = handle(async (p, signal) => {
    const q = required(p, 'query');
    const startMs = parseTimeParam(required(p, 'start'), 'start');
    const endMs = parseTimeParam(required(p, 'end'), 'end');
    if (endMs < startMs) throw badData('invalid parameter "end": end timestamp must not be before start time');
    const stepMs = parseStepParam(required(p, 'step'), startMs, endMs);
    const r = await gate.run(signal, () => runQuery(archive, { query: q, startMs, endMs, stepMs, lookbackMs: lookbackOf(p), timeoutMs: timeoutOf(p), signal }));
    return formatResultBytes(r);
  });
  // Metadata requests parse and match their selectors as queries do: they count against the same gate.
  const series = handle(async (p, signal) => {
    const m = metadataQuery(p, signal);
    if (m.matches.length === 0) throw badData('no match[] parameter provided');
    return successJson(await gate.run(signal, () => listSeries(archive, m)));
  });
  const labels = handle(async (p, signal) => {
    const m = metadataQuery(p, signal);
    return successJson(await gate.run(signal, () => listLabelNames(archive, m)));
  });
  // Tapedeck keeps no metric metadata and no exemplars: Prometheus' answers when it has none,
  // after the same checks of the parameters (docs/prometheus.md, "Query API").
  const metadata = handle(async (p) => {
    const limit = p.get('limit');
    if (limit !== undefined && limit !== '' && !/^[+-]?\d+$/.test(limit)) throw badData('limit must be a number');
    return successJson({});
  });
  const exemplars = handle(async (p, signal) => {
    const q = p.get('query') ?? '';
    const start = p.get('start');
    const end = p.get('end');
    const startMs = start === undefined || start === '' ? -Infinity : parseTimeParam(start, 'start');
    const endMs = end === undefined || end === '' ? Infinity : parseTimeParam(end, 'end');
    if (endMs < startMs) throw badData('end timestamp must not be before start timestamp');
    const budget = new Budget(performance.now() + timeoutOf(p), signal);
    await gate.run(signal, () => parseQueryCachedSliced(q, () => budget.slice()));
    return successJson([]);
  });
  const buildinfo = handle(async () =>
    successJson({ version: PROMQL_COMPATIBLE_VERSION, revision: 'tapedeck', branch: 'tapedeck', buildUser: 'tapedeck', buildDate: '', goVersion: '' }),
  );

  for (const method of ['GET', 'POST'] as const) {
    app.route({ method, url: '/api/v1/query', schema: { ...SCHEMA, summary: 'PromQL instant query (Prometheus API)' }, handler: query });
    app.route({ method, url: '/api/v1/query_range', schema: { ...SCHEMA, summary: 'PromQL range query (Prometheus API)' }, handler: queryRange });
    app.route({ method, url: '/api/v1/series', schema: { ...SCHEMA, summary: 'Series matching match[] selectors (Prometheus API)' }, handler: series });
    app.route({ method, url: '/api/v1/query_exemplars', schema: { ...SCHEMA, summary: 'Exemplars (Prometheus API): none are kept, so always an empty list' }, handler: exemplars });
    app.route({ method, url: '/api/v1/labels', schema: { ...SCHEMA, summary: 'Label names (Prometheus API)' }, handler: labels });
    app.route({
      method,
      url: '/api/v1/label/:name/values',
      schema: { ...SCHEMA, summary: 'Values of one label (Prometheus API)', params: { type: 'object', properties: { name: { type: 'string' } } } },
      handler: async (req, reply) =>
        handle(async (p, signal) => {
          const m = metadataQuery(p, signal);
          return successJson(await gate.run(signal, () => listLabelValues(archive, (req.params as { name: string }).name, m)));
        })(req, reply),
    });
  }
  app.get('/api/v1/metadata', { schema: { ...SCHEMA, summary: 'Metric metadata (Prometheus API): none is kept, so always an empty map' } }, metadata);
  app.get('/api/v1/status/buildinfo', { schema: { ...SCHEMA, summary: 'Build information (Prometheus API)' } }, buildinfo);
};
