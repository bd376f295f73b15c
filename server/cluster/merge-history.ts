/**
 * GET /api/v1/history over the whole cluster: each live shard streams its own history
 * (scope=local), and the streams are merged by the tie rule (./merge-records.ts). NDJSON
 * lines and CSV rows pass through as the shards wrote them (each shard renders with the one
 * codec); Parquet is written here from the merged batches.
 *
 * Completeness (docs/cluster.md, "The partial marker" and "A history cut short"): a shard
 * that cannot open its stream or send its first record is named missing before the first
 * byte, and an NDJSON or CSV answer lacking shards ends with a `partial` record naming them.
 * A shard lost after that cuts the answer: NDJSON and CSV end with an `error` record naming
 * it (./merge-history-records.ts), then the connection is closed without the end of the
 * chunked body; Parquet stops before its footer. Never a silently shorter history.
 */
import { formatTs } from '../../protocol/time.js';
import type { Batch } from '../../protocol/value.js';
import { decodeShardBatches } from './shard-batches.js';
import { CSV_HEADER, type HistoryFormat } from '../history.js';
import { parquetChunks } from '../history-parquet.js';
import { SERVER_LIMITS } from '../limits.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { liveShards, openShard, queryString, reasonOf, recordInTime, sortMissing, unavailable, type MissingShard, type OpenedStream } from './fanout.js';
import { mergedHorizon } from './merge-answers.js';
import { cutRecord, HistoryCut, partialRecord } from './merge-history-records.js';
import { csvRows, leadingTs, lines, mergeByTs, type Keyed } from './merge-records.js';
import { TapedeckError } from '../../protocol/errors.js';
import { stopIfGone } from '../client-gone.js';

export interface MergedHistoryQuery {
  globs: readonly string[] | undefined;
  fromUs: number;
  toUs: number | undefined;
  format: HistoryFormat;
  /**
   * The client leaving (server/client-gone.ts): every shard's request is aborted at once (the
   * shards see their connections close), the merge stops, and the chunks end (TPD_CANCELED).
   */
  signal?: AbortSignal | undefined;
}

export interface MergedHistory {
  missing: MissingShard[];
  horizonUs: number | null;
  /** Throws HistoryCut after the cut record when a shard is lost mid-stream. */
  chunks: AsyncGenerator<string | Uint8Array>;
}

/** A shard's query for the range, times resolved once here (every shard reads the same range). */
function shardQuery(q: MergedHistoryQuery): string {
  if (q.format === 'parquet') return '/api/v1/shard/batches' + queryString({ glob: q.globs, from: q.fromUs, to: q.toUs });
  return '/api/v1/history' + queryString({ glob: q.globs, from: formatTs(q.fromUs), to: q.toUs === undefined ? undefined : formatTs(q.toUs), format: q.format });
}

/** A shard whose stream failed: which, and why in a few words. */
class ShardLost extends Error {
  constructor(readonly shard: string, readonly reason: string) {
    super(`shard ${shard}: ${reason}`);
  }
}

/**
 * One shard's records in order; any failure of it (socket, timeout, malformed record, order,
 * a record not whole within clusterShardRecordMs: its body is destroyed) names the shard.
 */
async function* fromShard<T>(shard: string, records: AsyncIterable<Keyed<T>>, body: OpenedStream['body'], signal: AbortSignal | undefined): AsyncGenerator<Keyed<T>> {
  let lastTs = -Infinity;
  const it = records[Symbol.asyncIterator]();
  try {
    for (let r = await recordInTime(() => it.next(), (e) => body.destroy(e)); !r.done; r = await recordInTime(() => it.next(), (e) => body.destroy(e))) {
      if (r.value.ts < lastTs) throw new TapedeckError('TPD_INTERNAL', `went back in time (${r.value.ts} after ${lastTs})`);
      lastTs = r.value.ts;
      yield r.value;
    }
  } catch (err) {
    // The client left: the shard's stream was aborted for it, the shard lost nothing.
    if (signal?.aborted === true) throw signal.reason;
    throw new ShardLost(shard, err instanceof TapedeckError ? err.message.slice(0, 120) : reasonOf(err));
  } finally {
    // Ended, failed or closed by the merge (a client gone, another shard lost): the shard's
    // stream is closed now, as a for-await loop over it would.
    await it.return?.();
  }
}

/** A source whose first record was read before the answer began: it yields that record first. */
async function* primed<T>(head: IteratorResult<Keyed<T>>, rest: AsyncIterator<Keyed<T>>): AsyncGenerator<Keyed<T>> {
  if (head.done) return;
  try {
    yield head.value;
    for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
  } finally {
    await rest.return?.();
  }
}

/**
 * Reads every source's first record at once: a shard that fails it is missing (the answer
 * has not begun); the others are merged from there.
 */
async function prime<T>(sources: Array<{ shard: string; records: AsyncGenerator<Keyed<T>> }>, missing: MissingShard[], signal: AbortSignal | undefined): Promise<Array<AsyncIterator<Keyed<T>>>> {
  const heads = await Promise.allSettled(sources.map((s) => s.records.next()));
  if (signal?.aborted === true) {
    await Promise.allSettled(sources.map((s) => s.records.return(undefined)));
    stopIfGone(signal);
  }
  const out: Array<AsyncIterator<Keyed<T>>> = [];
  heads.forEach((h, i) => {
    const s = sources[i] as (typeof sources)[number];
    if (h.status === 'fulfilled') out.push(primed(h.value, s.records));
    else missing.push({ shard: s.shard, reason: h.reason instanceof ShardLost ? h.reason.reason : reasonOf(h.reason) });
  });
  return out;
}

/** Opens every live shard's stream; the merged answer's horizon and missing shards. */
export async function mergedHistory(dir: ShardDirectory, q: MergedHistoryQuery): Promise<MergedHistory> {
  stopIfGone(q.signal);
  const { live, missing } = await liveShards(dir);
  const path = shardQuery(q);
  const settled = await Promise.allSettled(live.map(({ shard }) => openShard(dir, shard, path, q.signal)));
  stopIfGone(q.signal);
  const open: Array<{ shard: ShardInfo; stream: OpenedStream }> = [];
  settled.forEach((r, i) => {
    const shard = (live[i] as { shard: ShardInfo }).shard;
    if (r.status === 'fulfilled') open.push({ shard, stream: r.value });
    else if (r.reason instanceof TapedeckError && r.reason.status < 500) throw r.reason;
    else missing.push({ shard: shard.id, reason: reasonOf(r.reason) });
  });
  if (open.length === 0) throw unavailable(missing);
  const lost = (): MissingShard[] => sortMissing([...missing]);
  let chunks: AsyncGenerator<string | Uint8Array>;
  if (q.format === 'parquet') {
    chunks = parquetAnswer(await prime(batchSources(open, q.fromUs, q.signal), missing, q.signal), lost);
  } else {
    const sources = open.map((o) => ({ shard: o.shard.id, records: fromShard(o.shard.id, q.format === 'csv' ? csvRecords(o.stream) : ndjsonRecords(o.stream), o.stream.body, q.signal) }));
    chunks = textAnswer(await prime(sources, missing, q.signal), q.format, lost);
  }
  const answered = open.filter((o) => !missing.some((m) => m.shard === o.shard.id));
  if (answered.length === 0) throw unavailable(missing);
  return { missing: sortMissing(missing), horizonUs: mergedHorizon(answered.map((o) => o.stream.horizonUs)), chunks };
}

function keyed(records: AsyncIterable<string>, prefix: string): AsyncGenerator<Keyed<string>> {
  return (async function* () {
    for await (const r of records) {
      if (r === '') continue;
      const ts = leadingTs(r, prefix);
      if (Number.isNaN(ts)) throw new TapedeckError('TPD_INTERNAL', `a history record without a timestamp: ${r.slice(0, 80)}`);
      yield { ts, item: r };
    }
  })();
}

function ndjsonRecords(s: OpenedStream): AsyncGenerator<Keyed<string>> {
  return keyed(lines(s.body, SERVER_LIMITS.clusterShardLineCharsMax), '{"ts":');
}

function csvRecords(s: OpenedStream): AsyncGenerator<Keyed<string>> {
  return keyed((async function* () {
    let first = true;
    for await (const r of csvRows(s.body, SERVER_LIMITS.clusterShardLineCharsMax)) {
      if (first && `${r}\n` === CSV_HEADER) {
        first = false;
        continue;
      }
      first = false;
      yield r;
    }
  })(), '');
}

/**
 * The merged records as text chunks of about historyChunkCharsTarget characters, then the
 * partial record when shards are missing; a shard lost mid-stream ends them with the cut
 * record (after the complete records before it), then throws HistoryCut.
 */
async function* textAnswer(sources: Array<AsyncIterator<Keyed<string>>>, format: 'ndjson' | 'csv', missing: () => MissingShard[]): AsyncGenerator<string> {
  let out = format === 'csv' ? CSV_HEADER : '';
  try {
    for await (const m of mergeByTs(sources)) {
      out += m.item + '\n';
      if (out.length >= SERVER_LIMITS.historyChunkCharsTarget) {
        yield out;
        out = '';
      }
    }
  } catch (err) {
    if (!(err instanceof ShardLost)) throw err;
    const cut = new HistoryCut({ shard: err.shard, reason: err.reason }, missing());
    yield out + cutRecord(format, cut);
    throw cut;
  }
  const gone = missing();
  if (gone.length > 0) out += partialRecord(format, gone);
  if (out.length > 0) yield out;
}

/** The shards' batch streams, paths mapped into one table for the answer (each stream announces its paths once). */
function batchSources(open: ReadonlyArray<{ shard: ShardInfo; stream: OpenedStream }>, fromUs: number, signal: AbortSignal | undefined): Array<{ shard: string; records: AsyncGenerator<Keyed<Batch>> }> {
  const paths: string[] = [];
  const ids = new Map<string, number>();
  const idOf = (p: string): number => {
    let id = ids.get(p);
    if (id === undefined) {
      id = paths.push(p) - 1;
      ids.set(p, id);
    }
    return id;
  };
  return open.map((o) => ({
    shard: o.shard.id,
    records: fromShard(o.shard.id, (async function* () {
      for await (const b of decodeShardBatches(o.stream.body as AsyncIterable<Buffer>, SERVER_LIMITS.clusterShardLineCharsMax, idOf, fromUs)) {
        const updates: Batch['updates'] = [];
        for (let i = 0; i < b.ids.length; i++) updates.push([paths[b.ids[i] as number] as string, b.values[i] as Batch['updates'][number][1]]);
        yield { ts: b.ts, item: { ts: b.ts, updates } };
      }
    })(), o.stream.body, signal),
  }));
}

/** Footer metadata key of a merged Parquet answer that lacks shards. */
export const PARQUET_PARTIAL_KEY = 'tapedeck.partial';

/** Parquet of the merged batches; a shard lost mid-stream throws HistoryCut before the footer, so no valid file is closed. */
async function* parquetAnswer(sources: Array<AsyncIterator<Keyed<Batch>>>, missing: () => MissingShard[]): AsyncGenerator<Uint8Array> {
  async function* batches(): AsyncGenerator<Batch> {
    for await (const m of mergeByTs(sources)) yield m.item;
  }
  try {
    // Shards missing when the answer starts are named in the file's footer metadata (a
    // shard lost later cuts the file before its footer instead).
    const lacking = missing();
    yield* parquetChunks(batches(), lacking.length > 0 ? [{ key: PARQUET_PARTIAL_KEY, value: JSON.stringify({ code: 'TPD_SHARDS_MISSING', missing: lacking }) }] : undefined);
  } catch (err) {
    if (!(err instanceof ShardLost)) throw err;
    throw new HistoryCut({ shard: err.shard, reason: err.reason }, missing());
  }
}
