/**
 * REST for playback sessions and the WebSocket stream of each session.
 *
 *   POST   /api/v1/sessions              create (body: controls + filter) -> 201
 *   GET    /api/v1/sessions              list
 *   GET    /api/v1/sessions/:id          read
 *   PATCH  /api/v1/sessions/:id          change controls
 *   DELETE /api/v1/sessions/:id          delete -> 204
 *   GET    /api/v1/sessions/:id/stream   WebSocket (?format=json|msgpack)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Ajv } from 'ajv';
import { decodeClientFrame } from '../../protocol/frames.js';
import { FRAME_LAYOUTS, type FrameLayout } from '../../protocol/frame-columns.js';
import { CONTROLS_SCHEMA, CONTROLS_VIEW_SCHEMA, FILTER_SCHEMA, parseFilter, type ControlsInput } from '../../protocol/controls.js';
import { CLOSE_CODES } from '../../protocol/close-codes.js';
import { TapedeckError } from '../../protocol/errors.js';
import type { Session, SessionSink, FrameFormat } from '../sessions/session.js';
import { mayAdminister } from '../ops/auth.js';
import { clientGone } from '../client-gone.js';
import type { ShardDirectory } from '../cluster/directory.js';
import { closeShardConnections, SCOPE_LOCAL } from '../cluster/fanout.js';
import { MergedSessions } from '../cluster/merged-sessions.js';
import type { Log } from '../sessions/manager.js';
import { noMatchSliced, SCOPE } from './queries.js';
import { closeStream, closeUnresponsive, keepAlive, STREAM_LIMITS, whenLeaving, type Liveness, type StreamLimits } from './ws-liveness.js';

const ID = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
const validControls = new Ajv({ allowUnionTypes: true }).compile(CONTROLS_SCHEMA);
/** Control frames a client may send per second on one session stream. */
export const CONTROLS_PER_SECOND_MAX = 50;
const ERROR_SCHEMA = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } },
} as const;
const SESSION_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    controls: CONTROLS_VIEW_SCHEMA,
    filter: { type: 'array', items: { type: 'string' } },
    stream: { type: 'string' },
    attached: { type: 'boolean' },
    createdAt: { type: 'string' },
  },
} as const;
/** The 201 of a create: the session, plus a warning when its filter matches no recorded path. */
const CREATED_SCHEMA = {
  ...SESSION_SCHEMA,
  properties: {
    ...SESSION_SCHEMA.properties,
    warning: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

function view(s: Session): object {
  return {
    id: s.id,
    controls: s.controls,
    filter: s.filter,
    stream: `/api/v1/sessions/${s.id}/stream`,
    attached: s.attached,
    createdAt: new Date(s.createdAt).toISOString(),
  };
}

/**
 * The session's sink on a WebSocket. The session's loop waits while more than `highBytes`
 * sent are not known to be read: past the last answered ping (`live`), wherever they are (the
 * server, the kernels' buffers), so a ping's deadline never grows with a backlog; a ping goes
 * once a quarter of that is unconfirmed, so a reading client seldom holds the loop up. Frames
 * sent anyway past that (controls after REST changes, errors, info) are counted, and past
 * wsSessionOverflowBytesMax the stream closes with 4008 instead of queueing them without bound.
 * The loop's own frames (batches, state, coverage, paths) are sent only under the mark, however
 * large, so they never count: a client reading frames of megabytes back to back is not closed
 * (docs/playback.md, "A client that does not read"; test/s12-overflow-frames.test.ts).
 */
function wsSink(socket: WebSocket, format: FrameFormat, coalesce: boolean, layout: FrameLayout, highBytes: number, limits: StreamLimits, live: Liveness): SessionSink {
  let last: Promise<void> = Promise.resolve();
  let overflowBytes = 0;
  return {
    format,
    coalesce,
    layout,
    send(data) {
      const unread = live.unreadBytes();
      if (unread > highBytes / 4) live.ping();
      if (unread > highBytes) {
        overflowBytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
        if (overflowBytes > limits.wsSessionOverflowBytesMax) {
          closeUnresponsive(socket, `the client does not read: over ${limits.wsSessionOverflowBytesMax} bytes of frames waiting past the high mark`, limits);
          return;
        }
      } else overflowBytes = 0;
      last = new Promise((resolve) => socket.send(data, { binary: format === 'msgpack' }, () => resolve()));
    },
    bufferedBytes: () => live.unreadBytes(),
    drained: async () => {
      await last;
      while (live.unreadBytes() > highBytes && socket.readyState === socket.OPEN) await live.answered();
    },
    // Deleted, collected, replaced, shut down: closed within wsCloseGraceMs even if the client does not read.
    close: (code, reason) => closeStream(socket, code, reason, limits),
  };
}

export interface SessionRoutesOptions {
  /** The cluster's shards: sessions merge them all (server/cluster/merged-sessions.ts, docs/cluster.md, "Merged reads"). */
  directory?: ShardDirectory | undefined;
  /** Bounds of streams whose client does not read (default STREAM_LIMITS). */
  streamLimits?: Partial<StreamLimits> | undefined;
}

export async function sessionRoutes(app: FastifyInstance, opts: SessionRoutesOptions = {}): Promise<void> {
  const sessions = app.sessions;
  const streamLimits: StreamLimits = { ...STREAM_LIMITS, ...opts.streamLimits };
  const highBytes = sessions.options.wsBufferHighBytes;
  // On a clustered node, sessions merge every shard unless created with scope=local.
  const merged = opts.directory ? new MergedSessions(opts.directory, sessions.options, app.archive.options.flushIntervalMs, app.log as unknown as Log) : undefined;
  if (merged && opts.directory) {
    const dir = opts.directory;
    app.addHook('preClose', async () => merged.close());
    app.addHook('onClose', async () => closeShardConnections(dir));
  }
  /** The session, merged or local. */
  const find = (id: string): Session => (merged?.has(id) ? merged.manager.get(id) : sessions.get(id));
  /** The session, if this request's token created it or is an admin's. */
  const owned = (req: FastifyRequest, id: string): Session => {
    const s = find(id);
    if (!mayAdminister(req, s.clientKey)) throw new TapedeckError('TPD_FORBIDDEN', `session ${id} belongs to another token; administering it needs the admin scope`);
    s.touch(); // a client driving its session over REST alone is still there
    return s;
  };

  app.post<{ Body: ControlsInput & { filter?: string[] }; Querystring: { scope?: 'local' | 'cluster' } }>('/api/v1/sessions', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { scope: SCOPE } },
      body: { ...CONTROLS_SCHEMA, properties: { ...CONTROLS_SCHEMA.properties, filter: FILTER_SCHEMA } },
      response: { 201: CREATED_SCHEMA, '4xx': ERROR_SCHEMA },
    },
  }, async (req, reply) => {
    const { filter: given, ...controls } = req.body ?? {};
    const filter = given === undefined ? [] : parseFilter(given);
    const cluster = merged !== undefined && req.query.scope !== SCOPE_LOCAL;
    // A creation whose client leaves stops its seek and frees its slot (server/sessions/read-stops.ts).
    const s = cluster ? await merged.create(req.principal ?? req.ip, controls, filter) : await sessions.create(req.principal ?? req.ip, controls, filter, clientGone(reply));
    req.log.info({ session: s.id, client: req.ip, merged: cluster }, 'session created');
    // Paths recorded later may still match (a live tail): a warning, not a refusal. (A merged
    // session's paths are the shards'; its state frames list them.)
    const warning = !cluster && filter.length > 0 ? await noMatchSliced(filter, filter, app.archive.paths) : undefined;
    return reply.status(201).send(warning ? { ...view(s), warning } : view(s));
  });

  app.get('/api/v1/sessions', {
    schema: { response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: SESSION_SCHEMA } } } } },
  }, async () => ({ sessions: [...sessions.list(), ...(merged?.manager.list() ?? [])].map(view) }));

  app.get<{ Params: { id: string } }>('/api/v1/sessions/:id', {
    schema: { params: { type: 'object', properties: { id: ID }, required: ['id'] }, response: { 200: SESSION_SCHEMA, '4xx': ERROR_SCHEMA } },
  }, async (req) => view(owned(req, req.params.id)));

  app.patch<{ Params: { id: string }; Body: ControlsInput }>('/api/v1/sessions/:id', {
    schema: {
      params: { type: 'object', properties: { id: ID }, required: ['id'] },
      body: CONTROLS_SCHEMA,
      response: { 200: SESSION_SCHEMA, '4xx': ERROR_SCHEMA },
    },
  }, async (req, reply) => {
    const s = owned(req, req.params.id);
    // Its seek stops when its client leaves.
    await s.setControls(req.body ?? {}, clientGone(reply));
    return view(s);
  });

  app.delete<{ Params: { id: string } }>('/api/v1/sessions/:id', {
    schema: { params: { type: 'object', properties: { id: ID }, required: ['id'] }, response: { 204: { description: 'deleted', type: 'null' }, '4xx': ERROR_SCHEMA } },
  }, async (req, reply) => {
    owned(req, req.params.id);
    if (merged?.has(req.params.id)) await merged.delete(req.params.id);
    else await sessions.delete(req.params.id);
    return reply.status(204).send();
  });

  app.get<{ Params: { id: string }; Querystring: { format?: FrameFormat; coalesce?: 'true' | 'false'; layout?: FrameLayout } }>('/api/v1/sessions/:id/stream', {
    websocket: true,
    schema: {
      params: { type: 'object', properties: { id: ID }, required: ['id'] },
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          format: { type: 'string', enum: ['json', 'msgpack'] },
          // Opt in to `batches` frames (several batches per frame): clients written to the
          // five frame types of the contract get one `batch` frame per batch.
          coalesce: { type: 'string', enum: ['true', 'false'] },
          // Batch frames as a column of paths (msgpack: ids) and one of values, not pairs.
          layout: { type: 'string', enum: [...FRAME_LAYOUTS] },
          access_token: { type: 'string', maxLength: 4096 },
        },
      },
    },
    preValidation: async (req) => {
      owned(req, (req.params as { id: string }).id); // 404 or 403 before the upgrade
    },
  }, (socket, req) => {
    let session: Session;
    try {
      session = find(req.params.id);
    } catch {
      socket.close(CLOSE_CODES.noSuchSession, 'no such session');
      return;
    }
    const sink = wsSink(socket, req.query.format ?? 'json', req.query.coalesce === 'true', req.query.layout ?? 'pairs', highBytes, streamLimits, keepAlive(socket, streamLimits));
    const isMerged = merged?.has(session.id) === true;
    if (isMerged) merged?.attach(session, sink);
    else session.attach(sink);
    // Aborted when this stream leaves: the reads of the changes it asked stop (server/sessions/read-stops.ts).
    const left = new AbortController();
    // Control frames per second from this socket (a token bucket); past it: TPD_RATE_LIMITED.
    let tokens = CONTROLS_PER_SECOND_MAX;
    let refilled = Date.now();
    // The stream is always read, even while its client is behind (frames wait for it past the
    // high mark): its FIN or close frame is then heard at once, not after the backlog. What its
    // asks answer meanwhile is bounded by the rate below and wsSessionOverflowBytesMax (4008).
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const now = Date.now();
      tokens = Math.min(CONTROLS_PER_SECOND_MAX, tokens + ((now - refilled) / 1000) * CONTROLS_PER_SECOND_MAX);
      refilled = now;
      if (tokens < 1) {
        session.sendError(new TapedeckError('TPD_RATE_LIMITED', `more than ${CONTROLS_PER_SECOND_MAX} control frames per second`));
        return;
      }
      tokens -= 1;
      let msg: unknown;
      try {
        msg = decodeClientFrame(data, isBinary);
      } catch (err) {
        session.sendError(err);
        return;
      }
      const m = msg as { type?: unknown; set?: unknown };
      if (m && typeof m === 'object' && m.type === 'control' && m.set && typeof m.set === 'object' && !Array.isArray(m.set)) {
        if ('filter' in m.set) {
          // Globs are judged the same way at every door: a malformed one is TPD_BAD_GLOB.
          try {
            parseFilter((m.set as { filter: unknown }).filter);
          } catch (err) {
            session.sendError(err);
            return;
          }
          session.sendError(new TapedeckError('TPD_BAD_CONTROL', 'filter: is set when the session is created (POST /api/v1/sessions), not a control', { control: 'filter' }));
          return;
        }
        // The same JSON Schema as PATCH's body, so both doors take the same controls.
        if (!validControls(m.set)) {
          const e = validControls.errors?.[0];
          const control = e?.instancePath.slice(1) || String(e?.params.additionalProperty ?? '');
          session.sendError(new TapedeckError('TPD_BAD_CONTROL', `${control}: ${e?.keyword === 'additionalProperties' ? 'is not a control' : e?.message ?? 'is invalid'}`, { control }));
          return;
        }
        session.setControls(m.set as ControlsInput, left.signal).catch((err: unknown) => {
          if (err !== left.signal.reason) session.sendError(err);
        });
      } else if (m && typeof m === 'object' && m.type === 'ping') {
        // Application-level keepalive: nothing to answer beyond keeping the session attached.
      } else {
        session.sendError(new TapedeckError('TPD_BAD_FRAME', 'expected {"type":"control","set":{...}}'));
      }
    });
    // A client leaving (its FIN, its close frame, an error) lets its session go at once, whatever waits for it.
    whenLeaving(socket, streamLimits, () => {
      left.abort(new TapedeckError('TPD_CANCELED', 'the stream that asked the change left'));
      if (isMerged) merged?.detach(session, sink);
      else session.detach(sink);
    });
  });
}
