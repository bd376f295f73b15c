/**
 * What a shard tells the node that merges a cluster's reads (docs/cluster.md, "Merged reads"):
 *
 *   GET /api/v1/shard                  { horizon_us, recording }: its committed horizon, and
 *                                      whether it records (false: its archive is final)
 *   GET /api/v1/shard/batches?from=&to=&glob=   every batch from `from` to `to` (µs; at most
 *                                      its committed horizon as the request came), exactly as recorded (a
 *                                      batch may update a path twice), as length-prefixed
 *                                      msgpack records (./shard-batches.ts): a merged
 *                                      session's feed
 *   GET /api/v1/shard/before?ts=&n=&glob=   { ts, before }: the timestamps of its last n batches
 *                                      at or before ts (newest first), and the position a
 *                                      step back over them lands on (null: the beginning)
 *
 * Both answer for this process's archive only, whatever the cluster. A feed whose client
 * takes no chunk within clusterShardFeedStallMs is reset, and at most clusterShardFeedsMax
 * are served at once (503 TPD_BUSY past it): SERVER_LIMITS, "A shard's batches feeds".
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { validateGlobs } from '../../protocol/glob.js';
import { TapedeckError } from '../../protocol/errors.js';
import { HORIZON_HEADER, horizonHeader, horizonOf } from '../horizon.js';
import { RECORDING_HEADER } from '../cluster/fanout.js';
import { SHARD_BATCHES_MEDIA_TYPE, encodeShardBatches } from '../cluster/shard-batches.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';
import { readsUntil } from '../../storage/read-signal.js';
import { clientGone, countedIfGone } from '../client-gone.js';
import type { Recorder } from '../recorder.js';
import { SERVER_LIMITS } from '../limits.js';
import { cutWhenStalled, type StallBound } from './history-stall.js';

export interface ShardRoutesOptions {
  recorder?: Recorder | undefined;
}

const GLOBS = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const SCOPE = { enum: ['local', 'cluster'] };
/** Microseconds or a count, as digits (query strings are not coerced). */
const DIGITS = { type: 'string', pattern: '^[0-9]{1,16}$' };

const FEED_STALL: StallBound = { get stallMs() { return SERVER_LIMITS.clusterShardFeedStallMs; }, get bytesPerSMin() { return SERVER_LIMITS.clusterShardFeedReadBytesPerSMin; } };

/**
 * Resets the connection of a feed whose client took no chunk in time (clusterShardFeedStallMs):
 * a reset, not a FIN, so the kernel drops at once what it held for the client.
 */
function cutUnread(req: FastifyRequest, reply: FastifyReply, bytes: number): void {
  req.log.info({ client: req.ip, reason: 'unresponsive', chunkBytes: bytes, url: req.url.slice(0, 200) }, 'batches feed cut: its client took no chunk within clusterShardFeedStallMs (SERVER_LIMITS)');
  const socket = reply.raw.socket;
  if (socket && !socket.destroyed) socket.resetAndDestroy();
  else reply.raw.destroy();
}

export const shardRoutes: FastifyPluginAsync<ShardRoutesOptions> = async (app, opts) => {
  app.get('/api/v1/shard', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { scope: SCOPE } },
      response: { 200: { type: 'object', required: ['horizon_us', 'recording'], properties: { horizon_us: { type: ['integer', 'null'] }, recording: { type: 'boolean' } } } },
    },
  }, async () => ({ horizon_us: horizonOf(app.archive.lastTs), recording: opts.recorder !== undefined }));

  /** Feeds being streamed (clusterShardFeedsMax). */
  let feeding = 0;
  app.get<{ Querystring: { from: string; to?: string; glob?: string | string[] } }>('/api/v1/shard/batches', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['from'],
        properties: { from: DIGITS, to: DIGITS, glob: GLOBS, scope: SCOPE },
      },
      response: { 200: { description: 'length-prefixed msgpack batches', content: { [SHARD_BATCHES_MEDIA_TYPE]: { schema: { type: 'string', format: 'binary' } } } } },
    },
  }, async (req, reply) => {
    const g = req.query.glob;
    const globs = g === undefined ? [] : Array.isArray(g) ? g : [g];
    validateGlobs(globs);
    if (feeding >= SERVER_LIMITS.clusterShardFeedsMax) {
      reply.header('retry-after', String(Math.ceil(SERVER_LIMITS.clusterShardRetryMs / 1000)));
      throw new TapedeckError('TPD_BUSY', `${feeding} batches feeds are open, as many as the shard serves at once (clusterShardFeedsMax); retry later`);
    }
    // Counted from here until the response is done or its connection gone.
    feeding++;
    reply.raw.once('close', () => feeding--);
    const horizon = horizonOf(app.archive.lastTs);
    reply.header(HORIZON_HEADER, horizonHeader(horizon));
    reply.header(RECORDING_HEADER, opts.recorder === undefined ? 'false' : 'true');
    reply.type(SHARD_BATCHES_MEDIA_TYPE);
    // The seek (a walk back, a wait for a cold file) and the reads after it stop when the
    // node that asked leaves.
    const signal = clientGone(reply);
    const c = app.archive.cursor({ ...(globs.length > 0 ? { filter: globs } : {}), onFetchWait: readsUntil(undefined, signal) });
    await countedIfGone(signal, () => c.seek({ ts: Number(req.query.from) - 1 }));
    const lastUs = Math.min(horizon ?? 0, req.query.to === undefined ? Number.MAX_SAFE_INTEGER : Number(req.query.to));
    const chunks = cutWhenStalled(encodeShardBatches(c, () => app.archive.paths, lastUs), (bytes) => cutUnread(req, reply, bytes), FEED_STALL);
    // No chunk read ahead (highWaterMark 0): the next is gathered once the socket took this one.
    return reply.send(Readable.from(chunks, { objectMode: false, highWaterMark: 0 }));
  });

  app.get<{ Querystring: { ts: string; n: string; glob?: string | string[] } }>('/api/v1/shard/before', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['ts', 'n'],
        properties: {
          ts: DIGITS,
          n: DIGITS,
          glob: GLOBS,
          scope: SCOPE,
        },
      },
      response: { 200: { type: 'object', required: ['ts', 'before'], properties: { ts: { type: 'array', items: { type: 'integer' } }, before: { type: ['integer', 'null'] } } } },
    },
  }, async (req, reply) => {
    const g = req.query.glob;
    const globs = g === undefined ? [] : Array.isArray(g) ? g : [g];
    validateGlobs(globs);
    const ts = Number(req.query.ts);
    const n = Number(req.query.n);
    if (n < 1 || n > STORAGE_LIMITS.seekBatchesMax) throw new TapedeckError('TPD_BAD_ARGUMENT', `n: 1 to ${STORAGE_LIMITS.seekBatchesMax} batches (seekBatchesMax), got ${n}`);
    const signal = clientGone(reply);
    const c = app.archive.cursor({ ...(globs.length > 0 ? { filter: globs } : {}), onFetchWait: readsUntil(undefined, signal) });
    // The storage's own step back from ts, then forward again up to ts: the same batches a
    // local session would step over. Stops when the node that asked leaves.
    return countedIfGone(signal, async () => {
      await c.seek({ ts });
      await c.seek({ batches: -n });
      const before = c.pos;
      const list: number[] = [];
      for (let b = await c.nextRaw(); b !== null && b.ts <= ts; b = await c.nextRaw()) list.push(b.ts);
      return { ts: list.reverse(), before };
    });
  });
};

