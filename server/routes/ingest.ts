/**
 * Push ingest into the config's `push` source:
 * - POST /api/v1/ingest: an NDJSON body (application/x-ndjson, text/plain), one batch per
 *   line, or one batch as an application/json document; 200 when every line was kept, 400 TPD_BAD_INGEST_LINE naming the bad lines when
 *   some were not (the good ones are kept all the same).
 * - GET /api/v1/ingest/ws: a WebSocket; each text message is one or more NDJSON lines and
 *   is answered with a JSON message of the same shape as the POST response's counts; past
 *   wsIngestPendingMessagesMax unanswered messages the socket stops reading.
 * A body is in the archive writer when the response leaves; it is durable at the next
 * flush (record.flush_interval) or at a graceful shutdown.
 */
import type { FastifyPluginAsync } from 'fastify';
import { ERRORS, TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { SERVER_LIMITS } from '../limits.js';
import type { IngestResult, PushSource } from '../sources/push.js';
import type { Source } from '../sources/source.js';

export interface IngestRoutesOptions {
  sources: readonly Source[];
}

const RESULT_PROPERTIES = {
  accepted_lines: { type: 'integer' },
  accepted_updates: { type: 'integer' },
  rejected_lines: { type: 'integer' },
  rejected: {
    type: 'array',
    items: { type: 'object', required: ['line', 'code', 'message'], properties: { line: { type: 'integer' }, code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

const ERROR_PROPERTY = { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } as const;

function body(r: IngestResult): Record<string, unknown> {
  return { accepted_lines: r.acceptedLines, accepted_updates: r.acceptedUpdates, rejected_lines: r.rejectedLines, rejected: r.rejected };
}

function summary(r: IngestResult): string {
  const first = r.rejected[0];
  const where = first ? `; first: line ${first.line}: ${first.code}: ${first.message}` : '';
  return `${r.rejectedLines} line(s) rejected, ${r.acceptedLines} kept${where}`;
}

export const ingestRoutes: FastifyPluginAsync<IngestRoutesOptions> = async (app, opts) => {
  const pushes = new Map(opts.sources.filter((s) => s.type === 'push').map((s) => [s.name, s as PushSource]));
  const pick = (name: string | undefined): PushSource => {
    const p = name === undefined ? pushes.values().next().value : pushes.get(name);
    if (!p) {
      throw new TapedeckError('TPD_NO_PUSH_SOURCE', name === undefined ? 'no source of type "push" is configured' : `no push source named ${JSON.stringify(name)}`);
    }
    return p;
  };

  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl', 'text/plain'], { parseAs: 'string', bodyLimit: SERVER_LIMITS.ingestBodyBytesMax }, (_req, text, done) => {
    done(null, text);
  });
  // A JSON document is one batch, however it is laid out: raw newlines cannot occur inside
  // JSON strings, so folding them to spaces makes it one NDJSON line. (This parser is
  // scoped to the ingest routes.)
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: SERVER_LIMITS.ingestBodyBytesMax }, (_req, text, done) => {
    done(null, (text as string).replace(/\r?\n/g, ' '));
  });

  app.post<{ Body: string; Querystring: { source?: string } }>('/api/v1/ingest', {
    bodyLimit: SERVER_LIMITS.ingestBodyBytesMax,
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { source: { type: 'string', minLength: 1 } } },
      body: { type: 'string' },
      response: {
        200: { type: 'object', properties: RESULT_PROPERTIES },
        '4xx': { type: 'object', required: ['error'], properties: { error: ERROR_PROPERTY, ...RESULT_PROPERTIES } },
        '5xx': { type: 'object', required: ['error'], properties: { error: ERROR_PROPERTY } },
      },
    },
  }, async (req, reply) => {
    const r = await pick(req.query.source).ingest(req.body);
    if (r.rejectedLines === 0) return body(r);
    return reply.status(400).send({ error: { code: 'TPD_BAD_INGEST_LINE', message: summary(r) }, ...body(r) });
  });

  app.get<{ Querystring: { source?: string } }>('/api/v1/ingest/ws', {
    websocket: true,
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { source: { type: 'string', minLength: 1 } } } },
  }, (socket, req) => {
    let push: PushSource;
    try {
      push = pick(req.query.source);
    } catch (err) {
      const e = err as TapedeckError;
      socket.send(JSON.stringify({ error: { code: e.code, message: e.message } }));
      socket.close(1008, e.code);
      return;
    }
    // Messages are ingested one after another, in the order they arrived; a sender that
    // outpaces the archive finds the socket paused (TCP backpressure) instead of a queue.
    let chain: Promise<void> = Promise.resolve();
    let pending = 0;
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (++pending >= SERVER_LIMITS.wsIngestPendingMessagesMax) socket.pause();
      chain = chain.then(async () => {
        if (isBinary) {
          socket.send(JSON.stringify({ error: { code: 'TPD_BAD_INGEST_LINE', message: 'send NDJSON as text messages' } }));
          return;
        }
        try {
          const r = await push.ingest(data.toString('utf8'));
          socket.send(JSON.stringify(r.rejectedLines === 0 ? body(r) : { error: { code: 'TPD_BAD_INGEST_LINE', message: summary(r) }, ...body(r) }));
        } catch (err) {
          if (isTapedeckError(err)) {
            socket.send(JSON.stringify({ error: { code: err.code, message: err.message } }));
          } else {
            req.log.error({ err }, 'WebSocket ingest failed');
            socket.send(JSON.stringify({ error: { code: 'TPD_INTERNAL', message: ERRORS.TPD_INTERNAL.meaning } }));
          }
        } finally {
          if (--pending < SERVER_LIMITS.wsIngestPendingMessagesMax && socket.isPaused) socket.resume();
        }
      });
    });
  });
};
