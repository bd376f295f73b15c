/**
 * History of paths over a time range, as text chunks in NDJSON (one line per recorded
 * batch: `{"ts":µs,"time":"RFC 3339","updates":{"/path":value}}`) or CSV (one row per update:
 * `ts,time,path,value`). A cursor reads the archive block by block and the generator yields
 * a chunk at a time, so a consumer that reads slowly holds the reading back: nothing is
 * built whole in memory. Shared by GET /api/v1/history and `tapedeck export`.
 */
import type { Archive } from '../storage/index.js';
import { TapedeckError } from '../protocol/errors.js';
import { validateGlobs } from '../protocol/glob.js';
import { formatTs, parseWallTime } from '../protocol/time.js';
import type { Value } from '../protocol/value.js';
import { valueToCsvCell, valueToJsonText } from '../protocol/value-json.js';
import { SERVER_LIMITS } from './limits.js';

export type HistoryFormat = 'ndjson' | 'csv';

export interface HistoryQuery {
  globs: readonly string[];
  fromUs: number;
  toUs: number;
  /** Read nothing newer than this (the committed horizon when the request arrived). */
  horizonUs?: number;
  format: HistoryFormat;
}

/**
 * A time parameter: absolute (RFC 3339, epoch number) or relative to now (`now`, `now-5m`,
 * `-5m`, `+1h`), the REST forms of the one time grammar (protocol/time.ts, docs/time.md).
 */
export function parseTimeParam(text: string, nowUs: number, what: string): number {
  return parseWallTime(text, nowUs, what);
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

/** Yields the history as text chunks; `onBatch` reports each batch's time (progress). */
export async function* historyChunks(archive: Archive, q: HistoryQuery, onBatch?: (ts: number) => void): AsyncGenerator<string> {
  validateGlobs(q.globs);
  if (q.toUs < q.fromUs) throw new TapedeckError('TPD_BAD_ARGUMENT', `"to" (${formatTs(q.toUs)}) is before "from" (${formatTs(q.fromUs)})`);
  const lastUs = Math.min(q.toUs, q.horizonUs ?? Number.MAX_SAFE_INTEGER);
  const c = archive.cursor({ filter: q.globs });
  await c.seek({ ts: q.fromUs - 1 });
  let out = q.format === 'csv' ? CSV_HEADER : '';
  for (let b = await c.next(); b && b.ts <= lastUs; b = await c.next()) {
    const time = formatTs(b.ts);
    if (q.format === 'csv') {
      const head = `${b.ts},${time},`;
      for (const [p, v] of b.updates) out += `${head}${csvField(p)},${csvField(valueToCsvCell(v))}\n`;
    } else {
      let line = `{"ts":${b.ts},"time":"${time}","updates":{`;
      for (let i = 0; i < b.updates.length; i++) {
        const [p, v] = b.updates[i] as [string, Value];
        line += `${i === 0 ? '' : ','}${JSON.stringify(p)}:${jsonText(v)}`;
      }
      out += `${line}}}\n`;
    }
    onBatch?.(b.ts);
    if (out.length >= SERVER_LIMITS.historyChunkCharsTarget) {
      yield out;
      out = '';
    }
  }
  if (out.length > 0) yield out;
}
