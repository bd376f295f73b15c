/**
 * Queries over what was recorded:
 * - GET /api/v1/paths?glob=   paths known to the archive
 * - GET /api/v1/state?at=&glob=   values as of a time; without `at`, the latest values,
 *   served from the recorder's memory (or read at the archive's end when not recording)
 * - GET /api/v1/history?glob=&from=&to=&format=ndjson|csv|parquet   every update in a range,
 *   streamed with backpressure
 * `glob` may be repeated; the default is every path. A malformed glob is 400 TPD_BAD_GLOB
 * (protocol/glob.ts judges, not the schema); globs that match no recorded path answer the
 * empty result with a `warning` (history: a `Tapedeck-Warning` header, its body being
 * NDJSON/CSV/Parquet).
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { compileSpec, noMatchWarning, validateGlobs } from '../../protocol/glob.js';
import { formatTs, parseWallTime } from '../../protocol/time.js';
import { TapedeckError } from '../../protocol/errors.js';
import type { Value } from '../../protocol/value.js';
import { readsUntil, wallClockUs } from '../../storage/index.js';
import { HISTORY_FORMATS, historyChunks, jsonText, type HistoryFormat } from '../history.js';
import { PARQUET_MEDIA_TYPE } from '../history-parquet.js';
import { HORIZON_HEADER, horizonHeader, horizonOf } from '../horizon.js';
import { SERVER_LIMITS } from '../limits.js';
import { cutWhenStalled } from './history-stall.js';
import type { Recorder } from '../recorder.js';
import type { ShardDirectory } from '../cluster/directory.js';
import { closeShardConnections, RECORDING_HEADER, SCOPE_LOCAL } from '../cluster/fanout.js';
import { mergedHistoryAnswer, mergedPaths, mergedState } from './cluster-queries.js';
import { AnswerGate } from './answer-gate.js';
import { clientGone, stopIfGone } from '../client-gone.js';
import { coverInSlices, forMatchingPaths } from '../path-slices.js';

// Moved to server/path-slices.ts (history.ts uses them too); importers here keep working.
export { coverInSlices, forMatchingPaths };

export interface QueryRoutesOptions {
  recorder?: Recorder | undefined;
  /** The cluster's shards: answers merge them all unless asked `scope=local` (docs/cluster.md, "Merged reads"). */
  directory?: ShardDirectory | undefined;
  /** Builds of whole JSON answers at once, shared with /api/v1/diff (default: a gate of its own). */
  answers?: AnswerGate | undefined;
}

/** `scope=local`: this shard's answer only (what a merging node asks; it never fans out again). */
export const SCOPE = { enum: ['local', 'cluster'] };
type Scope = 'local' | 'cluster';

const GLOBS = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const WARNING = { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } };
/** Header carrying the no-match warning of a streamed (NDJSON/CSV/Parquet) answer. */
export const WARNING_HEADER = 'tapedeck-warning';
const TIME = { type: 'string', minLength: 1, maxLength: 64 };
/** A merged answer's missing shards (TPD_SHARDS_MISSING, docs/cluster.md, "Merged reads"). */
export const PARTIAL = {
  type: 'object',
  required: ['code', 'missing'],
  properties: { code: { type: 'string' }, missing: { type: 'array', items: { type: 'object', required: ['shard', 'reason'], properties: { shard: { type: 'string' }, reason: { type: 'string' } } } } },
};
const HISTORY_MEDIA_TYPES: Record<HistoryFormat, string> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  parquet: PARQUET_MEDIA_TYPE,
};
const ERROR_RESPONSE = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

/** The query's globs, checked (TPD_BAD_GLOB); none given means every path. */
export function globList(g: string | string[] | undefined): string[] {
  if (g === undefined) return ['/**'];
  const globs = Array.isArray(g) ? g : [g];
  validateGlobs(globs);
  return globs;
}

/**
 * The warning for globs the client gave that select none of the archive's paths, else
 * undefined (no glob given selects everything: an empty archive is no surprise). Matched
 * in slices (forMatchingPaths).
 */
export async function noMatchSliced(given: string | string[] | undefined, globs: string[], paths: Iterable<string>, signal?: AbortSignal): Promise<{ code: string; message: string } | undefined> {
  if (given === undefined) return undefined;
  let any = false;
  await forMatchingPaths(compileSpec(globs), paths, () => {
    any = true;
    return false; // one is enough
  }, signal);
  return any ? undefined : noMatchWarning(globs);
}

/** Refuses a JSON answer of `chars` characters past jsonAnswerCharsMax (TPD_ANSWER_TOO_LARGE). */
export function checkAnswerChars(chars: number, what: string): void {
  if (chars <= SERVER_LIMITS.jsonAnswerCharsMax) return;
  throw new TapedeckError('TPD_ANSWER_TOO_LARGE', `the ${what} answer would pass ${SERVER_LIMITS.jsonAnswerCharsMax} characters of JSON (jsonAnswerCharsMax): narrow the globs, or read the values through /api/v1/history, which streams`);
}

/** The /api/v1/state body (the shape its response schema declares) as JSON text. */
async function stateJson(ts: number | null, paths: Iterable<string>, value: (p: string) => Value, noValue: () => Promise<object | undefined>, horizon: Horizon): Promise<string> {
  let out = `{"ts":${ts},"time":${ts === null ? 'null' : `"${formatTs(ts)}"`},"horizon":${horizon.us},"pending":${horizon.pending},"values":{`;
  let first = true;
  for (const p of paths) {
    const v = value(p);
    out += `${first ? '' : ','}${JSON.stringify(p)}:${jsonText(v)}`;
    first = false;
    checkAnswerChars(out.length, '/state');
  }
  // No value: say whether that is because the globs select no path at all.
  const warning = first ? await noValue() : undefined;
  return warning ? `${out}},"warning":${JSON.stringify(warning)}}` : `${out}}}`;
}

/**
 * The committed horizon an answer was made at: the last batch that a crash cannot take
 * back (null for an empty archive). `pending` is true only for a latest-value answer that
 * includes batches newer than it (recorded, not yet flushed).
 */
interface Horizon {
  us: number | null;
  pending: boolean;
}

/**
 * Latest-state answers as rendered, per glob list, valid while the recorder's version and
 * the committed horizon are unchanged. Bounded in bytes (SERVER_LIMITS); past the bound it starts afresh.
 */
class RenderedLatest {
  private readonly bodies = new Map<string, { version: string; body: string }>();
  private bytes = 0;

  get(key: string, version: string): string | undefined {
    const hit = this.bodies.get(key);
    return hit !== undefined && hit.version === version ? hit.body : undefined;
  }

  set(key: string, version: string, body: string): void {
    if (body.length > SERVER_LIMITS.stateBodyCachedMaxBytes) return;
    const old = this.bodies.get(key);
    if (old) this.bytes -= old.body.length;
    if (this.bytes + body.length > SERVER_LIMITS.stateBodiesCachedMaxBytes || (!old && this.bodies.size >= SERVER_LIMITS.stateGlobListsCachedMax)) {
      this.bodies.clear();
      this.bytes = 0;
    }
    this.bodies.set(key, { version, body });
    this.bytes += body.length;
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The committed horizon when the query arrived (null: empty archive). */
    horizonUs?: number | null;
  }
}

export const queryRoutes: FastifyPluginAsync<QueryRoutesOptions> = async (app, opts) => {
  const recorder = opts.recorder;
  const rendered = new RenderedLatest();
  const answers = opts.answers ?? new AnswerGate();
  /** History answers of this server being streamed (historyAnswersMax). */
  let streaming = 0;
  const dir = opts.directory;
  /** The cluster's directory when this request asks for the whole cluster, else undefined. */
  const merging = (scope: Scope | undefined): ShardDirectory | undefined => (scope === SCOPE_LOCAL ? undefined : dir);
  if (dir) app.addHook('onClose', async () => closeShardConnections(dir));
  // Every answer says the committed horizon it was made at (docs/recording.md, "Committed
  // horizon"): as-of and history answers hold nothing newer, so asking again after a
  // crash gives the same answer.
  app.addHook('preHandler', async (req, reply) => {
    req.horizonUs = horizonOf(app.archive.lastTs);
    reply.header(HORIZON_HEADER, horizonHeader(req.horizonUs));
    // A merging node reads it: a shard that records nothing has a final archive.
    reply.header(RECORDING_HEADER, recorder === undefined ? 'false' : 'true');
  });

  app.get<{ Querystring: { glob?: string | string[]; scope?: Scope } }>('/api/v1/paths', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { glob: GLOBS, scope: SCOPE } },
      response: {
        200: {
          type: 'object',
          required: ['paths', 'count', 'truncated'],
          properties: { paths: { type: 'array', items: { type: 'string' } }, count: { type: 'integer' }, truncated: { type: 'boolean' }, warning: WARNING, partial: PARTIAL },
        },
        '4xx': ERROR_RESPONSE,
      },
    },
  }, async (req, reply) => {
    const globs = globList(req.query.glob);
    const cluster = merging(req.query.scope);
    if (cluster) return mergedPaths(cluster, req.query.glob, globs, reply);
    return answers.run('/paths', reply, async (signal) => {
      const paths: string[] = [];
      let count = 0;
      // Listed up to pathsListedMax paths and jsonAnswerCharsMax characters of JSON (long
      // paths of control characters, six times longer as JSON, passed V8's longest string).
      let chars = 0;
      let full = false;
      await forMatchingPaths(compileSpec(globs), app.archive.paths, (p) => {
        count++;
        if (full || paths.length >= SERVER_LIMITS.pathsListedMax) return;
        chars += JSON.stringify(p).length + 1;
        if (chars > SERVER_LIMITS.jsonAnswerCharsMax) full = true;
        else paths.push(p);
      }, signal);
      const warning = count === 0 && req.query.glob !== undefined ? noMatchWarning(globs) : undefined;
      // Written here, within the build's place: the schema's serializer would write a hundred
      // thousand paths after it, outside the bound.
      reply.type('application/json; charset=utf-8');
      return JSON.stringify({ paths, count, truncated: count > paths.length, ...(warning ? { warning } : {}) });
    });
  });

  app.get<{ Querystring: { glob?: string | string[]; at?: string; scope?: Scope } }>('/api/v1/state', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { glob: GLOBS, at: TIME, scope: SCOPE } },
      response: {
        200: {
          type: 'object',
          required: ['ts', 'time', 'values'],
          properties: { ts: { type: ['integer', 'null'] }, time: { type: ['string', 'null'] }, values: { type: 'object', additionalProperties: true }, warning: WARNING, partial: PARTIAL },
        },
        '4xx': ERROR_RESPONSE,
      },
    },
  }, async (req, reply) => {
    const globs = globList(req.query.glob);
    const all = globs.includes('/**');
    const whyEmpty = (): Promise<object | undefined> => noMatchSliced(req.query.glob, globs, app.archive.paths);
    // `at` (even `now`) asks as of a time: committed data only. Without it, the latest values.
    const at = req.query.at === undefined ? undefined : parseWallTime(req.query.at, wallClockUs(), 'at');
    const cluster = merging(req.query.scope);
    if (cluster) return mergedState(cluster, req.query.glob, globs, at, reply);
    const horizon: Horizon = { us: req.horizonUs ?? null, pending: false };
    reply.type('application/json; charset=utf-8');
    if (at === undefined && recorder) {
      // The hot query: answered from memory, rendered once per recorded batch (by hand: a
      // schema serializer walking an open-ended object of values costs several times more).
      const key = all ? '' : globs.join('\n');
      const cached = rendered.get(key, `${recorder.version}:${horizon.us}`);
      if (cached !== undefined) return cached;
      return answers.run('/state', reply, async (signal) => {
        // Rendered meanwhile by a request that built it first (a burst of the same question).
        const hit = rendered.get(key, `${recorder.version}:${horizon.us}`);
        if (hit !== undefined) return hit;
        // Matched in slices and cached for the next asker: left to finish when this one leaves.
        const paths = all ? undefined : await recorder.pathsMatching(globs);
        stopIfGone(signal);
        // After the matching's awaits: the version, time and values read together, in one piece.
        const version = `${recorder.version}:${horizon.us}`;
        const latest = recorder.latest;
        // Values recorded after the horizon are pending: in memory, not yet flushed.
        horizon.pending = recorder.latestTs > (horizon.us ?? 0);
        // latestTs is 0 both before any batch and after one at 0 µs: the values tell which.
        const body = await stateJson(latest.size > 0 ? recorder.latestTs : null, paths ?? latest.keys(), (p) => latest.get(p) as Value, whyEmpty, horizon);
        rendered.set(key, version, body);
        return body;
      });
    }
    return answers.run('/state', reply, async (signal) => {
      // The seek's walk back to an image and its waits for cold files stop when the client leaves.
      const c = app.archive.cursor({ filter: globs, onFetchWait: readsUntil(undefined, signal) });
      // The read asks the filter of every path id at once: decided here first, in slices.
      await coverInSlices(c, app.archive.paths.length, signal);
      await c.seek(at === undefined || (horizon.us !== null && at >= horizon.us) ? 'end' : { ts: at });
      stopIfGone(signal);
      const state = await c.state();
      stopIfGone(signal);
      // Decided already (paths recorded since are decided now): no glob is tested twice.
      const noValue = async (): Promise<object | undefined> => (req.query.glob === undefined || (await coverInSlices(c, app.archive.paths.length, signal)) ? undefined : noMatchWarning(globs));
      return stateJson(at ?? horizon.us, state.keys(), (p) => state.get(p) as Value, noValue, horizon);
    });
  });

  app.get<{ Querystring: { glob?: string | string[]; from?: string; to?: string; format?: HistoryFormat; scope?: Scope } }>('/api/v1/history', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { glob: GLOBS, from: TIME, to: TIME, format: { enum: HISTORY_FORMATS }, scope: SCOPE },
      },
      response: {
        200: {
          description: 'every update in the range, streamed: NDJSON lines, CSV rows or a Parquet file (one row per update)',
          content: {
            'application/x-ndjson': { schema: { type: 'string' } },
            'text/csv': { schema: { type: 'string' } },
            [PARQUET_MEDIA_TYPE]: { schema: { type: 'string', format: 'binary' } },
          },
        },
        '4xx': ERROR_RESPONSE,
      },
    },
  }, async (req, reply) => {
    const now = wallClockUs();
    const format = req.query.format ?? 'ndjson';
    const fromUs = req.query.from === undefined ? 0 : parseWallTime(req.query.from, now, 'from');
    const toUs = req.query.to === undefined ? Number.MAX_SAFE_INTEGER : parseWallTime(req.query.to, now, 'to');
    const globs = globList(req.query.glob);
    const cluster = merging(req.query.scope);
    if (cluster && toUs < fromUs) throw new TapedeckError('TPD_BAD_ARGUMENT', `"to" (${formatTs(toUs)}) is before "from" (${formatTs(fromUs)})`);
    // Local and merged answers alike (a merged one holds a stream of every shard).
    if (streaming >= SERVER_LIMITS.historyAnswersMax) {
      reply.header('retry-after', String(SERVER_LIMITS.historyBusyRetryAfterS));
      throw new TapedeckError('TPD_BUSY', `${streaming} history answers are streaming, as many as the server takes at once (historyAnswersMax); retry later`);
    }
    // Counted from here until the response is done or its connection gone.
    streaming++;
    reply.raw.once('close', () => streaming--);
    if (cluster) {
      const body = await mergedHistoryAnswer(cluster, { given: req.query.glob, globs, fromUs, toUs: req.query.to === undefined ? undefined : toUs, format }, reply);
      reply.type(HISTORY_MEDIA_TYPES[format]);
      return reply.send(body);
    }
    // Nothing past the horizon taken when the request arrived: the same question gets the same answer.
    // A client that leaves stops the read at its next batch or slice (its place above is freed at once).
    const signal = clientGone(reply);
    const chunks = historyChunks(app.archive, { globs, fromUs, toUs, horizonUs: req.horizonUs ?? 0, format, signal });
    // Fail before the first byte when the query itself is wrong (e.g. to < from).
    const first = await chunks.next();
    async function* rest(): AsyncGenerator<string | Uint8Array> {
      if (!first.done) yield first.value;
      yield* chunks;
    }
    const body = cutWhenStalled(rest(), () => reply.raw.destroy());
    reply.type(HISTORY_MEDIA_TYPES[format]);
    let warning: { code: string; message: string } | undefined;
    try {
      warning = await noMatchSliced(req.query.glob, globs, app.archive.paths, signal);
    } catch (err) {
      await chunks.return(undefined);
      throw err;
    }
    // A header value is ASCII: other characters of the globs quoted in it become "?".
    if (warning) reply.header(WARNING_HEADER, `${warning.code}: ${warning.message}`.replace(/[^\x20-\x7e]/g, '?'));
    return reply.send(Readable.from(body, { objectMode: false, highWaterMark: 1 }));
  });
};
