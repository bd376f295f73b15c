/**
 * The fastify application. `buildServer` assembles the plugins around one open archive;
 * tests call it and listen on port 0. Every error leaves as `{ error: { code, message } }`
 * with the status from the error table (protocol/errors.ts); no stack traces leave.
 */
import http from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { WebSocket } from 'ws';
import websocket from '@fastify/websocket';
import type { Archive, ColdStorage } from '../storage/index.js';
import { percentEscapesDecode } from './http-query.js';
import { ERRORS, TapedeckError, isTapedeckError, type ErrorCode } from '../protocol/errors.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { sessionRoutes } from './routes/sessions.js';
import type { StreamLimits } from './routes/ws-liveness.js';
import { archiveRoutes } from './routes/archive.js';
import { webRoutes } from './routes/web.js';
import { SessionManager, type PlaybackOptions } from './sessions/manager.js';
import type { Recorder } from './recorder.js';
import type { Source } from './sources/source.js';
import { ingestRoutes } from './routes/ingest.js';
import { promWriteRoutes } from './routes/prom-write.js';
import { queryRoutes } from './routes/queries.js';
import { diffRoutes } from './routes/diff.js';
import { AnswerGate } from './routes/answer-gate.js';
import { workspaceRoutes } from './routes/workspace.js';
import { sourceRoutes } from './routes/sources.js';
import { coverageRoutes } from './routes/coverage.js';
import { CoverageLog } from './coverage.js';
import type { Logger } from 'pino';
import swagger from '@fastify/swagger';
import rateLimit from '@fastify/rate-limit';
import { registerAuth, type TokenConfig } from './ops/auth.js';
import { createMetrics } from './ops/metrics.js';
import { registerStats, type Readiness } from './ops/stats.js';
import { ERROR_BODY_SCHEMA } from './ops/openapi.js';
import { haRoutes } from './routes/ha.js';
import { SERVER_LIMITS } from './limits.js';
import { promqlRoutes } from './routes/promql.js';
import { isWarmUpRequest, promqlReadiness } from './promql/prepare.js';
import type { HaRuntime } from './ha/runtime.js';
import type { ShardDirectory } from './cluster/directory.js';
import { shardRoutes } from './routes/shard.js';
import { shardTimesRoutes } from './routes/cluster-shard-times.js';
import { capConnections } from './connections-cap.js';
import { strictJsonBodies } from './routes/json-body.js';

export interface ServerOptions {
  archive: Archive;
  /** A pino logger, pino options, or false for none. */
  logger?: FastifyServerOptions['logger'];
  /** An existing pino logger for the app (takes precedence over `logger`). */
  loggerInstance?: FastifyBaseLogger;
  /** The recorder: /api/v1/state serves its latest values from memory. */
  recorder?: Recorder;
  /** The configured sources: their health on /api/v1/sources, push ingest on /api/v1/ingest. */
  sources?: readonly Source[];
  playback?: Partial<PlaybackOptions>;
  /** Largest request body accepted (bytes). */
  bodyLimitBytes?: number;
  /** WebSocket frames from clients larger than this are refused (bytes). */
  wsMaxPayloadBytes?: number;
  /** Bounds of session and ingest streams whose client does not read or answer (default SERVER_LIMITS; tests shorten them). */
  streamLimits?: Partial<StreamLimits>;
  /** Bounds of requests that arrive slowly and of answers not read (default SERVER_LIMITS http*; tests shorten them). */
  httpTimeouts?: Partial<Record<HttpTimeout, number>>;
  /** Connections held at once (default: server/connections-cap.ts, from httpConnectionsMax and the open-file limit). */
  connectionsMax?: number;
  /** Connections one client address holds at once (default: server/connections-cap.ts, httpConnectionsPerAddressMax). */
  connectionsPerAddressMax?: number;
  /** Bearer tokens and their scopes; none = open server (loopback only, see startServer). */
  tokens?: readonly TokenConfig[];
  /** Requests per window per client (token name, else address); false = no limit. */
  rateLimit?: { max: number; timeWindowMs: number } | false;
  /** Which sources /ready requires, and how fresh. Default: every non-push source, 60 s. */
  readiness?: readonly Readiness[];
  /** The coverage journal (GET /api/v1/coverage): runs, gaps and source outages. */
  coverage?: CoverageLog;
  /** The Kafka sink and active/standby (GET /api/v1/ha, metrics, /ready). */
  ha?: HaRuntime;
  /** Archive hooks and retention started on `archive` (GET /api/v1/archive, metrics). */
  cold?: ColdStorage;
  /** The cluster's shards: reads and sessions merge them all (docs/cluster.md, "Merged reads"). */
  directory?: ShardDirectory;
}

/** The bounds of slow requests and unread answers (SERVER_LIMITS, "HTTP requests arriving slowly"). */
type HttpTimeout = 'httpHeadersTimeoutMs' | 'httpRequestTimeoutMs' | 'httpTimeoutsCheckMs' | 'httpAnswerStallMs' | 'httpReadBytesPerSMin';

export const SERVER_DEFAULTS = {
  bodyLimitBytes: 16 * 1024 * 1024,
  wsMaxPayloadBytes: 1024 * 1024,
} as const;

declare module 'fastify' {
  interface FastifyInstance {
    archive: Archive;
    sessions: SessionManager;
  }
}

/** Codes of fastify's own client errors by status (others are TPD_BAD_REQUEST). */
const FRAMEWORK_ERROR_CODES: Partial<Record<number, ErrorCode>> = { 413: 'TPD_BODY_TOO_LARGE', 415: 'TPD_UNSUPPORTED_MEDIA_TYPE', 429: 'TPD_RATE_LIMITED' };

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const timeouts: Record<HttpTimeout, number> = { ...SERVER_LIMITS, ...opts.httpTimeouts };
  const app = Fastify({
    ...(opts.loggerInstance ? { loggerInstance: opts.loggerInstance } : { logger: opts.logger ?? false }),
    // Slow requests (SERVER_LIMITS, "HTTP requests arriving slowly"); Node checks both timeouts.
    requestTimeout: timeouts.httpRequestTimeoutMs,
    http: { headersTimeout: timeouts.httpHeadersTimeoutMs, connectionsCheckingInterval: timeouts.httpTimeoutsCheckMs },
    bodyLimit: opts.bodyLimitBytes ?? SERVER_DEFAULTS.bodyLimitBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, allowUnionTypes: true } },
    // Requests are not logged one by one (metrics and /stats count them).
    logController: new LogController({ disableRequestLogging: true }),
    // Requests Node's HTTP parser refuses before fastify sees them (headers or URL too large,
    // malformed HTTP, timeouts): answered in our error shape too, then the socket is closed.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      // Garbage pipelined behind a request whose answer is under way (its headers sent, its
      // body streaming): an answer written now would land inside that body (a history
      // export's chunks), so the connection is only cut, as Node's own handler does.
      if ((socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage?.headersSent === true) {
        socket.destroy();
        return;
      }
      const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'TPD_HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'TPD_REQUEST_TIMEOUT' : 'TPD_BAD_REQUEST';
      const { status } = ERRORS[code];
      const body = JSON.stringify({ error: { code, message: code === 'TPD_BAD_REQUEST' ? 'malformed HTTP request' : ERRORS[code].meaning } });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    },
    // Router-level failures (bad URL encoding, over-long parameters) in our error shape too.
    frameworkErrors: (err, _req, reply) => {
      void (reply as unknown as FastifyReply).status(400).send({ error: { code: 'TPD_BAD_REQUEST', message: err.message } });
    },
  });
  capConnections(app.server, app.log, opts.connectionsMax, opts.connectionsPerAddressMax);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Tapedeck', version: '1', description: 'Record network telemetry; replay it from any moment at any speed. Errors are { error: { code, message } } with the codes of docs/errors.md.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: structuredClone(ERROR_BODY_SCHEMA) as never } },
      security: (opts.tokens?.length ?? 0) > 0 ? [{ bearer: [] }] : [],
    },
  });
  // Every route documents the error shape for 4xx and 5xx answers (the OpenAPI document
  // and the serialiser both use it), unless it declares its own.
  app.addHook('onRoute', (route) => {
    if (route.schema?.hide) return;
    const schema = (route.schema ??= {});
    const response = (schema.response ??= {}) as Record<string, unknown>;
    for (const key of ['4xx', '5xx']) response[key] ??= structuredClone(ERROR_BODY_SCHEMA);
  });
  app.decorate('archive', opts.archive);
  app.decorate('sessions', new SessionManager(opts.archive, opts.playback ?? {}, app.log, opts.coverage));
  app.addHook('onClose', async () => app.sessions.close());
  // Before listening: the first seeks after start should not pay for catalog reads and JIT.
  app.addHook('onReady', async () => {
    await opts.archive.warm().catch((err: unknown) => app.log.warn({ err }, 'archive warm-up failed (first seeks may be slower)'));
  });

  app.setErrorHandler((err, req, reply) => {
    if (isTapedeckError(err)) {
      // Server-side failures are logged with what caused them (paths, stderr); the client
      // gets the code and a message that names neither.
      if (err.status >= 500) req.log.error({ code: err.code, err: err.cause ?? err }, 'request failed');
      return reply.status(err.status).send({ error: { code: err.code, message: err.message } });
    }
    const e = err as { validation?: unknown; statusCode?: number; message: string; code?: string };
    if (e.validation) {
      return reply.status(400).send({ error: { code: 'TPD_BAD_REQUEST', message: e.message } });
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // fastify's own client errors (body too large, bad content type, bad JSON): each
      // status its own code; anything else is answered 400, as the table says.
      const code = FRAMEWORK_ERROR_CODES[e.statusCode] ?? 'TPD_BAD_REQUEST';
      return reply.status(ERRORS[code].status).send({ error: { code, message: e.message } });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ error: { code: 'TPD_INTERNAL', message: ERRORS.TPD_INTERNAL.meaning } });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: 'TPD_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  // A query string whose %XX escapes do not decode (not hex, cut short, not UTF-8) is refused,
  // not read as literal text: `glob=%ED%A0%80` would otherwise be the glob "%ED%A0%80"
  // (Node's querystring and URLSearchParams keep or replace such escapes in silence; Go's
  // url.ParseQuery, Prometheus' reader, refuses them too). Form bodies: server/routes/promql.ts.
  app.addHook('onRequest', async (req, reply) => {
    const q = req.url.indexOf('?');
    if (q >= 0 && !percentEscapesDecode(req.url.slice(q + 1))) {
      return reply.status(400).send({ error: { code: 'TPD_BAD_REQUEST', message: 'malformed percent-encoding in the query string' } });
    }
  });
  // An answer its client does not read is cut once it has waited long enough (cutWhenUnread).
  app.addHook('onRequest', (_req, reply, done) => {
    cutWhenUnread(reply.raw, timeouts.httpAnswerStallMs, timeouts.httpReadBytesPerSMin);
    done();
  });
  registerAuth(app, opts.tokens ?? []);
  // A refused WebSocket upgrade (401, 404, 429, ...) leaves the raw socket open otherwise:
  // close it once the answer is out, so refused clients cannot hold the server.
  app.addHook('onResponse', (req, reply, done) => {
    if (req.headers.upgrade !== undefined && reply.statusCode >= 400) req.raw.socket?.destroy();
    done();
  });
  if (opts.rateLimit) {
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler', // after authentication, so the key can be the token's name
      max: opts.rateLimit.max,
      timeWindow: opts.rateLimit.timeWindowMs,
      keyGenerator: (req) => req.principal ?? req.ip,
      allowList: (req) => {
        const path = req.url.split('?')[0];
        return path === '/health' || path === '/ready' || isWarmUpRequest(req);
      },
      errorResponseBuilder: (_req, ctx) => new TapedeckError('TPD_RATE_LIMITED', `more than ${ctx.max} requests in ${ctx.after === '' ? 'the window' : 'the window; retry in ' + ctx.after}`),
    });
  }
  await app.register(websocket, {
    options: { maxPayload: opts.wsMaxPayloadBytes ?? SERVER_DEFAULTS.wsMaxPayloadBytes },
    errorHandler: wsErrorHandler,
    // On close, sessions go first: each client gets its `end` frame and a normal close
    // (1000); other sockets (ingest) then get 1001 "going away". The plugin's default
    // closes every socket with no status before the sessions could say anything.
    preClose: async function closeSockets(this: FastifyInstance) {
      await this.sessions.close();
      for (const client of this.websocketServer.clients) client.close(CLOSE_CODES.goingAway, 'server shutting down');
      this.websocketServer.close();
    },
  });
  app.get('/health', { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }));
  const metrics = createMetrics(app, { archive: opts.archive, sessions: app.sessions, sources: opts.sources ?? [], ...(opts.ha ? { ha: opts.ha } : {}), ...(opts.cold ? { cold: opts.cold } : {}) });
  app.get('/metrics', { schema: { produces: ['text/plain'], response: { 200: { type: 'string' } } } }, async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
  const ha = opts.ha ? haReadiness(opts.ha) : undefined;
  // /ready: also `promql` while the query API prepares at start (server/promql/prepare.ts).
  registerStats(app, opts.archive, opts.sources ?? [], opts.readiness, () => [...(ha?.() ?? []), ...promqlReadiness(opts.archive)]);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // JSON bodies: strict UTF-8, no key twice, no number altered (ingest reads its own the same way).
  strictJsonBodies(app);
  await app.register(sessionRoutes, { directory: opts.directory, streamLimits: opts.streamLimits });
  await app.register(archiveRoutes, { cold: opts.cold });
  await app.register(webRoutes);
  // Recording routes (ingest, queries) register here as they are built.
  // /state, /diff and /paths answers are built a few at a time, the routes together.
  const answers = new AnswerGate();
  await app.register(queryRoutes, { recorder: opts.recorder, directory: opts.directory, answers });
  await app.register(shardRoutes, { recorder: opts.recorder });
  await app.register(shardTimesRoutes);
  await app.register(diffRoutes, { answers });
  await app.register(workspaceRoutes);
  await app.register(ingestRoutes, { sources: opts.sources ?? [], streamLimits: opts.streamLimits });
  await app.register(promWriteRoutes, { sources: opts.sources ?? [], archive: opts.archive });
  await app.register(sourceRoutes, { sources: opts.sources ?? [] });
  // Without a recording run (tests, tools) the journal is still read, so coverage always answers.
  await app.register(coverageRoutes, { coverage: opts.coverage ?? await CoverageLog.open(opts.archive, app.log as unknown as Logger), directory: opts.directory });
  await app.register(haRoutes, { ha: opts.ha });
  await app.register(promqlRoutes);
  return app;
}

/**
 * Errors on a WebSocket. What a client causes (ws's protocol errors `WS_ERR_*`: a frame over
 * maxPayload, text that is not UTF-8, a bad opcode; a peer resetting the connection) is the
 * client's business: one info line, no stack, and ws has already closed with its own code
 * (1009, 1007, 1002), which terminating now could cut off before it leaves. Anything else is
 * a server fault: logged with its stack, the socket ended (the plugin's default).
 */
function wsErrorHandler(err: Error, socket: WebSocket, req: FastifyRequest): void {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && (code.startsWith('WS_ERR_') || code === 'ECONNRESET' || code === 'EPIPE')) {
    req.log.info({ code, message: err.message }, 'websocket closed: client error');
    return;
  }
  req.log.error({ err }, 'websocket failed');
  socket.terminate();
}

/**
 * Cuts the connection of an answer its client does not take (SERVER_LIMITS, httpAnswerStallMs).
 * Once the answer is complete on the server's side ('prefinish': its end handed to the socket,
 * after any answer before it on a pipelined connection), what the kernel has not taken waits
 * in the socket's buffer, and Node sets no timeout until all of it is taken ('finish'), when
 * the keep-alive timeout starts: a client that never reads held the answer (up to
 * jsonAnswerCharsMax of it) and the connection for ever. It now has httpAnswerStallMs plus
 * the bytes left at bytesPerSMin. An upgraded WebSocket's answer is never ended here: its
 * streams have their own bounds (server/routes/ws-liveness.ts).
 */
function cutWhenUnread(res: http.ServerResponse, stallMs: number, bytesPerSMin: number): void {
  res.once('prefinish', () => {
    const socket = res.socket;
    if (!socket || socket.destroyed) return;
    const left = socket.writableLength;
    const cut = setTimeout(() => socket.destroy(), stallMs + (left / bytesPerSMin) * 1000);
    cut.unref();
    const taken = (): void => clearTimeout(cut);
    res.once('finish', taken);
    res.once('close', taken);
  });
}

/** /ready: active/standby is not ready while Redis is unreachable (every recorder publishes then). */
function haReadiness(ha: HaRuntime): () => Array<{ check: string; ok: boolean; detail: string }> {
  return () => {
    const v = ha.view();
    if (!v.ha) return [];
    const ok = v.ha.redis === 'ok';
    return [{ check: 'ha', ok, detail: ok ? `${v.ha.role}, lease held by ${v.ha.leaseHolder ?? 'nobody'}` : `Redis unreachable: ${v.ha.role} (${v.ha.role === 'degraded' ? 'publishing without a lease: duplicates possible' : 'not publishing'})` }];
  };
}

export { TapedeckError };
