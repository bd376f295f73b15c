/**
 * History of paths over a time range, as text chunks in NDJSON (one line per recorded
 * batch: `{"ts":µs,"time":"RFC 3339","updates":{"/path":value}}`) or CSV (one row per update:
 * `ts,time,path,value`), or as Parquet bytes (one row per update: server/history-parquet.ts).
 * A cursor reads the archive block by block and the generator yields a chunk at a time, so
 * a consumer that reads slowly holds the reading back: nothing is built whole in memory.
 * Shared by GET /api/v1/history and `tapedeck export`.
 */
import { setImmediate } from 'node:timers/promises';
import { readsUntil, type Archive } from '../storage/index.js';
import { TapedeckError } from '../protocol/errors.js';
import { validateGlobs } from '../protocol/glob.js';
import { formatTs } from '../protocol/time.js';
import type { Batch, Value } from '../protocol/value.js';
import { valueToCsvCell, valueToJsonText } from '../protocol/value-json.js';
import { countGone, stoppedByGone } from './client-gone.js';
import { lastUpdatePerPath } from './batch-paths.js';
import { parquetChunks } from './history-parquet.js';
import { coverInSlices } from './path-slices.js';
import { SERVER_LIMITS } from './limits.js';

export type HistoryFormat = 'ndjson' | 'csv' | 'parquet';

export const HISTORY_FORMATS: readonly HistoryFormat[] = ['ndjson', 'csv', 'parquet'];

export interface HistoryQuery {
  globs: readonly string[];
  fromUs: number;
  toUs: number;
  /** Read nothing newer than this (the committed horizon when the request arrived). */
  horizonUs?: number;
  format: HistoryFormat;
  /**
   * The asking client leaving (server/client-gone.ts): the read stops at the next batch (or
   * slice of glob matching) and the answer ends there, unsent: its connection is gone.
   */
  signal?: AbortSignal | undefined;
}

/** JSON text of a recorded value in the one JSON form (docs/values.md); no value is null. */
export function jsonText(v: Value | undefined): string {
  return v === undefined ? 'null' : valueToJsonText(v);
}

/** A CSV field: quoted when it holds a quote, a comma or a line break. */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_HEADER = 'ts,time,path,value\n';

/** The batches of the range, read one at a time; `onBatch` reports each batch's time (progress). */
async function* historyBatches(archive: Archive, q: HistoryQuery, onBatch?: (ts: number) => void): AsyncGenerator<Batch> {
  validateGlobs(q.globs);
  if (q.toUs < q.fromUs) throw new TapedeckError('TPD_BAD_ARGUMENT', `"to" (${formatTs(q.toUs)}) is before "from" (${formatTs(q.fromUs)})`);
  const lastUs = Math.min(q.toUs, q.horizonUs ?? Number.MAX_SAFE_INTEGER);
  // Globs that name paths (no `*`) select a few columns of each block: read only those.
  // Reads over blocks that hold nothing selected, and waits for cold files, stop when the client leaves.
  const c = archive.cursor({ filter: q.globs, selective: q.globs.every((g) => !g.includes('*')), onFetchWait: readsUntil(undefined, q.signal) });
  // The reads ask the filter of path ids in one piece: decided here first, in slices (28
  // costly globs over 2000 long paths are 27 s of matching), stopping if the client leaves.
  await coverInSlices(c, archive.paths.length, q.signal);
  // Reads of blocks already decoded (the shared cache) take no turn of the event loop:
  // yield one now and then, so that many histories at once leave room for other requests.
  let updates = 0;
  try {
    await c.seek({ ts: q.fromUs - 1 });
    for (let b = await c.next(); b && b.ts <= lastUs; b = await c.next()) {
      if (q.signal?.aborted === true) {
        // Ended quietly, not thrown: a stream that fails is logged, and nobody reads this one.
        countGone(q.signal);
        return;
      }
      yield b;
      onBatch?.(b.ts);
      updates += b.updates.length;
      if (updates >= SERVER_LIMITS.historyUpdatesPerYield) {
        updates = 0;
        await setImmediate();
      }
    }
  } catch (err) {
    // A read stopped inside the cursor for the client leaving: ended quietly too.
    if (stoppedByGone(q.signal, err)) return;
    throw err;
  }
}

/**
 * Yields the history as chunks: text for NDJSON and CSV, bytes for Parquet. A query that is
 * wrong (bad glob, to < from) throws at the first next(), before any chunk.
 */
export function historyChunks(archive: Archive, q: HistoryQuery, onBatch?: (ts: number) => void): AsyncGenerator<string | Uint8Array> {
  const batches = historyBatches(archive, q, onBatch);
  return q.format === 'parquet' ? parquetChunks(batches) : textChunks(batches, q.format);
}

async function* textChunks(batches: AsyncIterable<Batch>, format: 'ndjson' | 'csv'): AsyncGenerator<string> {
  let out = format === 'csv' ? CSV_HEADER : '';
  const seen = new Map<string, number>();
  for await (const recorded of batches) {
    // A path twice in a batch (older writers): an NDJSON object names it once, its last update,
    // as replay gives (server/batch-paths.ts); CSV rows are every update, in order, as recorded.
    const b = format === 'ndjson' ? lastUpdatePerPath(recorded, seen) : recorded;
    const time = formatTs(b.ts);
    const head = format === 'csv' ? `${b.ts},${time},` : '';
    if (format === 'ndjson') out += `{"ts":${b.ts},"time":"${time}","updates":{`;
    let lineOpen = false;
    for (let i = 0; i < b.updates.length; i++) {
      const [p, v] = b.updates[i] as [string, Value];
      if (format === 'csv') out += `${head}${csvField(p)},${csvField(valueToCsvCell(v))}\n`;
      else out += `${i === 0 ? '' : ','}${JSON.stringify(p)}:${jsonText(v)}`;
      // A batch may hold up to batchUpdatesMax updates (a million made one chunk of 50 M
      // characters, rendered in 1 s in one piece): chunks end within a batch too (a line
      // may end in a later chunk), and the event loop gets a turn now and then.
      if (out.length >= SERVER_LIMITS.historyChunkCharsTarget) {
        yield out;
        out = '';
        lineOpen = format === 'ndjson';
      }
      if ((i + 1) % SERVER_LIMITS.historyUpdatesPerYield === 0) await setImmediate();
    }
    if (format === 'ndjson') out += '}}\n';
    // A line begun in an earlier chunk ends in this one before the next batch is read: a
    // read that fails there (a damaged block) ends the text at a line's end, never within
    // one (an export cut so would hold a line that is not the batch's).
    if (lineOpen || out.length >= SERVER_LIMITS.historyChunkCharsTarget) {
      yield out;
      out = '';
    }
  }
  if (out.length > 0) yield out;
}
