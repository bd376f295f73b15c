/**
 * GET /api/v1/history over the whole cluster: each live shard streams its own history
 * (scope=local), and the streams are merged by the tie rule (./merge-records.ts). NDJSON
 * lines and CSV rows pass through as the shards wrote them (each shard renders with the one
 * codec); Parquet is written here from the merged batches. Shards that cannot open their
 * stream are named missing before the first byte; a shard lost mid-stream aborts the answer
 * (the client sees a cut body, never a silently shorter one).
 */
import { formatTs } from '../../protocol/time.js';
import type { Batch } from '../../protocol/value.js';
import { decodeShardBatches } from './shard-batches.js';
import { CSV_HEADER, type HistoryFormat } from '../history.js';
import { parquetChunks } from '../history-parquet.js';
import { SERVER_LIMITS } from '../limits.js';
import type { ShardDirectory } from './directory.js';
import { liveShards, openShard, queryString, reasonOf, sortMissing, unavailable, type MissingShard, type OpenedStream } from './fanout.js';
import { mergedHorizon } from './merge-answers.js';
import { csvRows, leadingTs, lines, mergeByTs, type Keyed } from './merge-records.js';
import { TapedeckError } from '../../protocol/errors.js';

export interface MergedHistoryQuery {
  globs: readonly string[] | undefined;
  fromUs: number;
  toUs: number | undefined;
  format: HistoryFormat;
}

export interface MergedHistory {
  missing: MissingShard[];
  horizonUs: number | null;
  chunks: AsyncGenerator<string | Uint8Array>;
}

/** A shard's query for the range, times resolved once here (every shard reads the same range). */
function shardQuery(q: MergedHistoryQuery): string {
  if (q.format === 'parquet') return '/api/v1/shard/batches' + queryString({ glob: q.globs, from: q.fromUs, to: q.toUs });
  return '/api/v1/history' + queryString({ glob: q.globs, from: formatTs(q.fromUs), to: q.toUs === undefined ? undefined : formatTs(q.toUs), format: q.format });
}

/** Opens every live shard's stream; the merged answer's horizon and missing shards. */
export async function mergedHistory(dir: ShardDirectory, q: MergedHistoryQuery): Promise<MergedHistory> {
  const { live, missing } = await liveShards(dir);
  const path = shardQuery(q);
  const settled = await Promise.allSettled(live.map(({ shard }) => openShard(dir, shard, path)));
  const open: OpenedStream[] = [];
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') open.push(r.value);
    else if (r.reason instanceof TapedeckError && r.reason.status < 500) throw r.reason;
    else missing.push({ shard: (live[i] as { shard: { id: string } }).shard.id, reason: reasonOf(r.reason) });
  });
  if (open.length === 0) throw unavailable(missing);
  const horizonUs = mergedHorizon(open.map((s) => s.horizonUs));
  const chunks = q.format === 'csv' ? csvChunks(open) : q.format === 'ndjson' ? ndjsonChunks(open) : parquetChunks(batches(open));
  return { missing: sortMissing(missing), horizonUs, chunks };
}

function keyed(records: AsyncGenerator<string>, prefix: string): AsyncIterator<Keyed<string>> {
  return (async function* () {
    for await (const r of records) {
      if (r === '') continue;
      const ts = leadingTs(r, prefix);
      if (Number.isNaN(ts)) throw new TapedeckError('TPD_INTERNAL', `a shard sent a history record without a timestamp: ${r.slice(0, 80)}`);
      yield { ts, item: r };
    }
  })();
}

async function* gathered(records: AsyncIterable<string>, head: string): AsyncGenerator<string> {
  let out = head;
  for await (const r of records) {
    out += r + '\n';
    if (out.length >= SERVER_LIMITS.historyChunkCharsTarget) {
      yield out;
      out = '';
    }
  }
  if (out.length > 0) yield out;
}

async function* items(merged: AsyncIterable<{ item: string }>): AsyncGenerator<string> {
  for await (const m of merged) yield m.item;
}

function ndjsonChunks(open: readonly OpenedStream[]): AsyncGenerator<string> {
  return gathered(items(mergeByTs(open.map((s) => keyed(lines(s.body, SERVER_LIMITS.clusterShardLineCharsMax), '{"ts":')))), '');
}

function csvChunks(open: readonly OpenedStream[]): AsyncGenerator<string> {
  const rows = (s: OpenedStream): AsyncGenerator<string> => (async function* () {
    let first = true;
    for await (const r of csvRows(s.body, SERVER_LIMITS.clusterShardLineCharsMax)) {
      if (first && `${r}\n` === CSV_HEADER) {
        first = false;
        continue;
      }
      first = false;
      yield r;
    }
  })();
  return gathered(items(mergeByTs(open.map((s) => keyed(rows(s), '')))), CSV_HEADER);
}

async function* batches(open: readonly OpenedStream[]): AsyncGenerator<Batch> {
  // One path table for the answer: each stream announces its paths once.
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
  const sources = open.map((s) => (async function* () {
    for await (const b of decodeShardBatches(s.body as AsyncIterable<Buffer>, SERVER_LIMITS.clusterShardLineCharsMax, idOf)) {
      const updates: Batch['updates'] = [];
      for (let i = 0; i < b.ids.length; i++) updates.push([paths[b.ids[i] as number] as string, b.values[i] as Batch['updates'][number][1]]);
      yield { ts: b.ts, item: { ts: b.ts, updates } };
    }
  })());
  for await (const m of mergeByTs(sources)) yield m.item;
}
