/**
 * The merged (cluster-wide) answers of /api/v1/paths, /state, /history and /coverage, used
 * by their routes when the app has a shard directory and the request is not `scope=local`
 * (docs/cluster.md, "Merged reads"). Each asks every live shard with scope=local, merges
 * (server/cluster/merge-*.ts) and says which shards are missing: a `partial` field in JSON
 * bodies and a Tapedeck-Partial header on every answer. A client that leaves aborts the
 * requests to the shards at once and stops the merge (server/client-gone.ts): counted in
 * tapedeck_requests_canceled_total, its connections to the shards free for the next.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { TapedeckError } from '../../protocol/errors.js';
import { noMatchWarning } from '../../protocol/glob.js';
import { formatTs } from '../../protocol/time.js';
import type { ShardDirectory } from '../cluster/directory.js';
import { fanoutJson, partialHeader, partialOf, PARTIAL_HEADER, queryString, type MissingShard } from '../cluster/fanout.js';
import { isCoverageAnswer, isPathsAnswer, isStateAnswer, mergeCoverage, mergedHorizon, mergePaths, mergeStates, type CoverageAnswer, type PathsAnswer, type StateAnswer } from '../cluster/merge-answers.js';
import { mergedHistory } from '../cluster/merge-history.js';
import { HistoryCut } from '../cluster/merge-history-records.js';
import { resolveShared } from '../cluster/merge-update-times.js';
import type { HistoryFormat } from '../history.js';
import { HORIZON_HEADER, horizonHeader } from '../horizon.js';
import { SERVER_LIMITS } from '../limits.js';
import { cutWhenStalled } from './history-stall.js';
import { CANCELED, clientGone, stopIfGone } from '../client-gone.js';

/** Sets the merged horizon and, when shards are missing, the Tapedeck-Partial header. */
function markAnswer(reply: FastifyReply, horizonUs: number | null, missing: readonly MissingShard[]): void {
  reply.header(HORIZON_HEADER, horizonHeader(horizonUs));
  if (missing.length > 0) reply.header(PARTIAL_HEADER, partialHeader(missing));
}

function withPartial<T extends object>(body: T, missing: readonly MissingShard[]): T {
  const partial = partialOf(missing);
  return partial ? { ...body, partial } : body;
}

const indexed = <T>(f: { answers: Array<{ index: number; shard: { id: string }; value: T; horizonUs: number | null }> }) =>
  f.answers.map((a) => ({ index: a.index, shard: a.shard.id, value: a.value, horizonUs: a.horizonUs }));

export async function mergedPaths(dir: ShardDirectory, given: string | string[] | undefined, globs: string[], reply: FastifyReply): Promise<object> {
  const signal = clientGone(reply);
  const f = await fanoutJson<PathsAnswer>(dir, '/api/v1/paths' + queryString({ glob: given === undefined ? undefined : globs }), isPathsAnswer, signal);
  markAnswer(reply, mergedHorizon(f.answers.map((a) => a.horizonUs)), f.missing);
  const merged = mergePaths(f.answers.map((a) => a.value), SERVER_LIMITS.pathsListedMax);
  const warning = merged.count === 0 && given !== undefined ? noMatchWarning(globs) : undefined;
  return withPartial({ ...merged, ...(warning ? { warning } : {}) }, f.missing);
}

export async function mergedState(dir: ShardDirectory, given: string | string[] | undefined, globs: string[], atUs: number | undefined, reply: FastifyReply): Promise<string> {
  const signal = clientGone(reply);
  const fanned = await fanoutJson<StateAnswer>(dir, '/api/v1/state' + queryString({ glob: given === undefined ? undefined : globs, at: atUs === undefined ? undefined : formatTs(atUs) }), isStateAnswer, signal);
  // Paths several shards hold are decided by when each shard updated them.
  const f = await resolveShared(dir, fanned, atUs, signal);
  stopIfGone(signal);
  const horizon = mergedHorizon(f.answers.map((a) => a.horizonUs));
  markAnswer(reply, horizon, f.missing);
  const m = mergeStates(indexed(f), f.times);
  const ts = atUs ?? m.ts;
  // Every shard found no path for the globs: the warning a single archive would give.
  const warning = f.answers.every((a) => (a.value as { warning?: unknown }).warning !== undefined) ? noMatchWarning(globs) : undefined;
  reply.type('application/json; charset=utf-8');
  return JSON.stringify(withPartial({ ts, time: ts === null ? null : formatTs(ts), horizon, pending: m.pending, values: m.values, ...(warning ? { warning } : {}) }, f.missing));
}

export async function mergedHistoryAnswer(dir: ShardDirectory, q: { given: string | string[] | undefined; globs: string[]; fromUs: number; toUs: number | undefined; format: HistoryFormat }, reply: FastifyReply): Promise<Readable> {
  const signal = clientGone(reply);
  const h = await mergedHistory(dir, { globs: q.given === undefined ? undefined : q.globs, fromUs: q.fromUs, toUs: q.toUs, format: q.format, signal });
  markAnswer(reply, h.horizonUs, h.missing);
  // The first chunk before the answer begins: a shard lost before it (a Parquet answer sends
  // nothing until its first row group) fails the request with a code, not a broken stream.
  let first: IteratorResult<string | Uint8Array>;
  try {
    first = await h.chunks.next();
  } catch (err) {
    stopIfGone(signal);
    if (!(err instanceof HistoryCut)) throw err;
    throw new TapedeckError('TPD_CLUSTER_UNAVAILABLE', `shard ${err.lost.shard} was lost (${err.lost.reason}) before the answer began; ask again`);
  }
  if (signal.aborted) await h.chunks.return(undefined);
  stopIfGone(signal);
  // From here a client that leaves before the end is counted once, however the stream ends.
  const counted = (): void => void CANCELED.running++;
  signal.addEventListener('abort', counted, { once: true });
  async function* all(): AsyncGenerator<string | Uint8Array> {
    try {
      if (first.done) return;
      yield first.value;
      yield* h.chunks;
    } finally {
      if (!signal.aborted) signal.removeEventListener('abort', counted);
    }
  }
  // A client that stops reading is let go as from a local answer, and every shard stream with it.
  return Readable.from(cutWhenStalled(cutLoudly(all(), reply, signal), () => reply.raw.destroy()), { objectMode: false, highWaterMark: 1 });
}

/**
 * A history cut by a lost shard: its last record (the cut record, NDJSON and CSV) is let
 * out to the client (at most clusterCutRecordDrainMs), then the stream fails, and fastify
 * closes the connection without the end of the chunked body: the client sees an error.
 */
async function* cutLoudly(chunks: AsyncGenerator<string | Uint8Array>, reply: FastifyReply, signal: AbortSignal): AsyncGenerator<string | Uint8Array> {
  try {
    yield* chunks;
  } catch (err) {
    // The client left (the shards' streams were aborted for it): ended quietly, nobody reads it.
    if (signal.aborted) return;
    if (err instanceof HistoryCut) {
      reply.log.warn({ shard: err.lost.shard, reason: err.lost.reason, missing: err.missing }, 'merged history cut: a shard was lost mid-stream');
      await flushed(reply.raw.socket, SERVER_LIMITS.clusterCutRecordDrainMs);
    }
    throw err;
  }
}

/** Resolves once what was written to the socket has gone to the kernel (or it closed, or after maxMs). */
function flushed(socket: Socket | null, maxMs: number): Promise<void> {
  if (!socket || socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, maxMs);
    // An empty write completes after every write before it.
    socket.write(Buffer.alloc(0), done);
    socket.once('close', done);
  });
}

export async function mergedCoverage(dir: ShardDirectory, startUs: number, endUs: number | undefined, reply: FastifyReply): Promise<object> {
  const f = await fanoutJson<CoverageAnswer>(dir, '/api/v1/coverage' + queryString({ start: formatTs(startUs), end: endUs === undefined ? undefined : formatTs(endUs) }), isCoverageAnswer, clientGone(reply));
  markAnswer(reply, mergedHorizon(f.answers.map((a) => a.value.horizon_us)), f.missing);
  return withPartial(mergeCoverage(indexed(f)), f.missing);
}
