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
import { formatTs, parseTs } from '../protocol/time.js';
import type { Value } from '../protocol/value.js';
import { durationMs } from './duration.js';
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
 * A time parameter: RFC 3339, an epoch number (s/ms/µs by magnitude), `now`, or an offset
 * from now such as `-5m` or `-1d`.
 */
export function parseTimeParam(text: string, nowUs: number, what: string): number {
  const s = text.trim();
  if (s === 'now') return nowUs;
  if (s.startsWith('-') || s.startsWith('+')) {
    try {
      const us = Math.round(durationMs(s.slice(1), what) * 1000);
      return s.startsWith('-') ? nowUs - us : nowUs + us;
    } catch {
      throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${JSON.stringify(s).slice(0, 60)} is not an offset such as -5m or -1d`);
    }
  }
  try {
    return parseTs(s);
  } catch (err) {
    throw new TapedeckError('TPD_BAD_ARGUMENT', `${what}: ${(err as Error).message}`);
  }
}

/** JSON text of a recorded value; integers beyond 2^53 (bigint) as numbers when exact, else strings. */
export function jsonText(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? (Number.isSafeInteger(Number(x)) ? Number(x) : x.toString()) : x)) ?? 'null';
}

function csvField(v: Value): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') s = String(v);
  else if (typeof v === 'string') s = v;
  else s = jsonText(v);
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
      for (const [p, v] of b.updates) out += `${head}${csvField(p)},${csvField(v)}\n`;
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
