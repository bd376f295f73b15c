/**
 * Push ingest into the config's `push` source:
 * - POST /api/v1/ingest: an NDJSON body (application/x-ndjson, text/plain), one batch per
 *   line, or one batch as an application/json document. 200 when every line was kept; 400
 *   TPD_BAD_INGEST_LINE naming the bad lines when some were not (the good ones are kept all
 *   the same); 400 TPD_TOO_MANY_BAD_LINES when reading stopped at ingestBadLinesMax bad
 *   lines; an error of the archive (503 TPD_BACKPRESSURE, 507 TPD_DISK_FULL, 503
 *   TPD_ARCHIVE_CLOSED, 500 TPD_IO) ends the request with its own status, a Retry-After
 *   for 503/507, and the counts of what was recorded before it.
 * - GET /api/v1/ingest/ws: a WebSocket; each text message is one or more NDJSON lines, each
 *   binary message one msgpack batch map or an array of them (lines numbered from 1), and
 *   each is answered with a JSON message of the same shape as the POST response; past
 *   wsIngestPendingMessagesMax unanswered messages the socket stops reading. After an
 *   error of the archive the socket stays open when retrying makes sense (backpressure,
 *   full disk) and is closed otherwise: 1001 when the archive is closed (shutdown), 1011
 *   on an I/O or internal error. The server pings it every wsPingIntervalMs; a peer that
 *   answers none within wsPongTimeoutMs (gone without a FIN) is closed with 4008
 *   `unresponsive`, as session streams are (server/routes/ws-liveness.ts).
 * In a cluster, a request (or a WebSocket message) with a path another shard owns is refused
 * whole with 421 TPD_NOT_OWNER, its error naming the owner and its URL (docs/cluster.md); a
 * WebSocket stays open after it.
 * `?ack=memory` (default): answered once the lines are in the archive writer; they are
 * durable at the next flush (record.flush_interval) or at a graceful shutdown.
 * `?ack=durable` (on the WebSocket URL: for every message of the connection): answered
 * once they are in a committed, fsynced flush.
 */
import { CLOSE_CODES } from '../../protocol/close-codes.js';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { ERRORS, TapedeckError, isTapedeckError, type ErrorCode } from '../../protocol/errors.js';
import { decodeUtf8 } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../limits.js';
import type { AckLevel, IngestResult, PushSource } from '../sources/push.js';
import { clientMessage, parseAckLevel, retryAfterS } from './ingest-answers.js';
import { closeUnresponsive, keepAlive, STREAM_LIMITS, type StreamLimits } from './ws-liveness.js';
import type { Source } from '../sources/source.js';
import { checkUtf8Charset } from './json-body.js';

export interface IngestRoutesOptions {
  sources: readonly Source[];
  /** Pings of the WebSocket and the close of a peer that answers none (default STREAM_LIMITS). */
  streamLimits?: Partial<StreamLimits> | undefined;
}

const RESULT_PROPERTIES = {
  ack: { type: 'string' },
  lines_read: { type: 'integer' },
  accepted_lines: { type: 'integer' },
  accepted_updates: { type: 'integer' },
  recorded_updates: { type: 'integer' },
  filtered_updates: { type: 'integer' },
  rejected_lines: { type: 'integer' },
  restamped_lines: { type: 'integer' },
  rejected: {
    type: 'array',
    items: { type: 'object', required: ['line', 'code', 'message'], properties: { line: { type: 'integer' }, code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

const SHARD_PROPERTY = { type: 'object', required: ['shard', 'url'], properties: { shard: { type: 'string' }, url: { type: 'string' } } } as const;

/** `owner`, `owners`: on 421 TPD_NOT_OWNER (a cluster), the shard owning the first refused path, and every owner met. */
export const ERROR_PROPERTY = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' }, owner: SHARD_PROPERTY, owners: { type: 'array', items: SHARD_PROPERTY } },
} as const;

const QUERYSTRING = { type: 'object', additionalProperties: false, properties: { source: { type: 'string', minLength: 1 }, ack: { type: 'string' } } } as const;

/** Errors after which a WebSocket pusher may go on (it is told to retry); others close the socket with these codes. */
const WS_CLOSE_CODES: Partial<Record<ErrorCode, number>> = { TPD_ARCHIVE_CLOSED: CLOSE_CODES.goingAway, TPD_IO: CLOSE_CODES.internal, TPD_INTERNAL: CLOSE_CODES.internal };

function counts(r: IngestResult): Record<string, unknown> {
  return {
    ack: r.ack,
    lines_read: r.linesRead,
    accepted_lines: r.acceptedLines,
    accepted_updates: r.acceptedUpdates,
    recorded_updates: r.recordedUpdates,
    filtered_updates: r.filteredUpdates,
    rejected_lines: r.rejectedLines,
    restamped_lines: r.restampedLines,
    rejected: r.rejected,
  };
}

function summary(r: IngestResult): string {
  const first = r.rejected[0];
  const where = first ? `; first: line ${first.line}: ${first.code}: ${first.message}` : '';
  return `${r.rejectedLines} line(s) rejected, ${r.acceptedLines} kept${where}`;
}

/** The error part of an answer: I/O and internal failures may name paths, so they give only their meaning. */
function errorOf(err: TapedeckError): { code: ErrorCode; message: string; owner?: unknown; owners?: unknown } {
  const e = { code: err.code, message: clientMessage(err) };
  if (err.code !== 'TPD_NOT_OWNER' || !err.details) return e;
  return { ...e, owner: { shard: err.details.owner, url: err.details.owner_url }, owners: err.details.owners };
}

/** Status, headers and body of the answer to one ingest (HTTP) or message (WebSocket). */
function answer(r: IngestResult): { status: number; error: TapedeckError | undefined; body: Record<string, unknown> } {
  const err = r.stoppedBy ?? (r.rejectedLines > 0 ? new TapedeckError('TPD_BAD_INGEST_LINE', summary(r)) : undefined);
  if (!err) return { status: 200, error: undefined, body: counts(r) };
  return { status: err.status, error: err, body: { error: errorOf(err), ...counts(r) } };
}

function sendError(reply: FastifyReply, err: TapedeckError, body: Record<string, unknown>): FastifyReply {
  const after = retryAfterS(err, SERVER_LIMITS.ingestBackpressureRetryAfterS);
  if (after !== undefined) void reply.header('retry-after', String(after));
  if (err.status >= 500) reply.log.error({ code: err.code, err: err.cause ?? err }, 'ingest stopped by the archive');
  return reply.status(err.status).send(body);
}

export const ingestRoutes: FastifyPluginAsync<IngestRoutesOptions> = async (app, opts) => {
  const pushes = new Map(opts.sources.filter((s) => s.type === 'push').map((s) => [s.name, s as PushSource]));
  const streamLimits: StreamLimits = { ...STREAM_LIMITS, ...opts.streamLimits };
  const pick = (name: string | undefined): PushSource => {
    const p = name === undefined ? pushes.values().next().value : pushes.get(name);
    if (!p) {
      throw new TapedeckError('TPD_NO_PUSH_SOURCE', name === undefined ? 'no source of type "push" is configured' : `no push source named ${JSON.stringify(name)}`);
    }
    return p;
  };

  // Bodies are decoded strictly: bytes that are not UTF-8 refuse the body (400) rather than
  // becoming U+FFFD in the recorded values (protocol/value.ts decodeUtf8).
  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl', 'text/plain'], { parseAs: 'buffer', bodyLimit: SERVER_LIMITS.ingestBodyBytesMax }, (req, body, done) => {
    try {
      checkUtf8Charset(req.headers['content-type']);
      done(null, decodeUtf8(body as Buffer, 'request body'));
    } catch (err) {
      done(err as Error);
    }
  });
  // A JSON document is one batch, however it is laid out: raw newlines cannot occur inside
  // JSON strings, so folding them to spaces makes it one NDJSON line. (This parser is
  // scoped to the ingest routes.)
  app.removeContentTypeParser('application/json'); // the app's (json-body.ts) gives way to this one here
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: SERVER_LIMITS.ingestBodyBytesMax }, (req, body, done) => {
    try {
      checkUtf8Charset(req.headers['content-type']);
      done(null, decodeUtf8(body as Buffer, 'request body').replace(/\r?\n/g, ' '));
    } catch (err) {
      done(err as Error);
    }
  });

  app.post<{ Body: string; Querystring: { source?: string; ack?: string } }>('/api/v1/ingest', {
    bodyLimit: SERVER_LIMITS.ingestBodyBytesMax,
    schema: {
      querystring: QUERYSTRING,
      body: { type: 'string' },
      response: {
        200: { type: 'object', properties: RESULT_PROPERTIES },
        '4xx': { type: 'object', required: ['error'], properties: { error: ERROR_PROPERTY, ...RESULT_PROPERTIES } },
        '5xx': { type: 'object', required: ['error'], properties: { error: ERROR_PROPERTY, ...RESULT_PROPERTIES } },
      },
    },
  }, async (req, reply) => {
    const ack = parseAckLevel(req.query.ack, 'memory');
    const push = pick(req.query.source);
    let r: IngestResult;
    try {
      r = await push.ingest(req.body, { ack });
    } catch (err) {
      // Refused before a line was read (shutting down): nothing recorded.
      if (!isTapedeckError(err)) throw err;
      return sendError(reply, err, { error: errorOf(err) });
    }
    const a = answer(r);
    if (!a.error) return a.body;
    return sendError(reply, a.error, a.body);
  });

  app.get<{ Querystring: { source?: string; ack?: string } }>('/api/v1/ingest/ws', {
    websocket: true,
    schema: { querystring: QUERYSTRING },
  }, (socket, req) => {
    let push: PushSource;
    let ack: AckLevel;
    try {
      ack = parseAckLevel(req.query.ack, 'memory');
      push = pick(req.query.source);
    } catch (err) {
      const e = err as TapedeckError;
      socket.send(JSON.stringify({ error: { code: e.code, message: e.message } }));
      socket.close(CLOSE_CODES.policy, e.code);
      return;
    }
    // A peer gone without a FIN would hold the socket (and its pending answers) for ever.
    // While the socket is paused by us (the archive is behind) its pongs wait unread: not the peer's silence.
    keepAlive(socket, streamLimits, () => socket.isPaused);
    // Messages are ingested one after another, in the order they arrived; a sender that
    // outpaces the archive finds the socket paused (TCP backpressure) instead of a queue.
    let chain: Promise<void> = Promise.resolve();
    let pending = 0;
    let closed = false;
    const sendWs = (err: TapedeckError | undefined, body: Record<string, unknown>): void => {
      if (closed) return;
      const after = err ? retryAfterS(err, SERVER_LIMITS.ingestBackpressureRetryAfterS) : undefined;
      // A pusher that does not read its answers: they wait in the server (past the kernels'
      // buffers) up to wsIngestAnswersWaitingBytesMax, then the socket closes with 4008 and
      // what it sent that is not ingested yet is dropped, unanswered (never acknowledged).
      if (socket.bufferedAmount > streamLimits.wsIngestAnswersWaitingBytesMax) {
        closed = true;
        closeUnresponsive(socket, `the client does not read its answers: over ${streamLimits.wsIngestAnswersWaitingBytesMax} bytes of them waiting`, streamLimits);
        return;
      }
      socket.send(JSON.stringify(after === undefined ? body : { ...body, retry_after_s: after }));
      const closeCode = err ? WS_CLOSE_CODES[err.code] : undefined;
      if (err && err.status >= 500) req.log.error({ code: err.code, err: err.cause ?? err }, 'WebSocket ingest stopped by the archive');
      if (closeCode !== undefined) {
        closed = true;
        socket.close(closeCode, err?.code);
      }
    };
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (++pending >= SERVER_LIMITS.wsIngestPendingMessagesMax) socket.pause();
      chain = chain.then(async () => {
        try {
          if (closed) return;
          // Binary: the same batches in msgpack, answered in JSON like text (one answer shape).
          const a = answer(isBinary ? await push.ingestMsgpack(data, { ack }) : await push.ingest(data.toString('utf8'), { ack }));
          sendWs(a.error, a.body);
        } catch (err) {
          if (isTapedeckError(err)) {
            sendWs(err, { error: errorOf(err) });
          } else {
            req.log.error({ err }, 'WebSocket ingest failed');
            sendWs(new TapedeckError('TPD_INTERNAL', ERRORS.TPD_INTERNAL.meaning), { error: { code: 'TPD_INTERNAL', message: ERRORS.TPD_INTERNAL.meaning } });
          }
        } finally {
          if (--pending < SERVER_LIMITS.wsIngestPendingMessagesMax && socket.isPaused) socket.resume();
        }
      });
    });
  });
};
