/**
 * The last record of a merged NDJSON or CSV history that is not complete for the whole
 * cluster (docs/cluster.md, "The partial marker" and "A history cut short"). Data records
 * always start with their timestamp; these start with a word, so a reader that parses
 * timestamps stops at them rather than taking them for data:
 *
 *   NDJSON  {"partial":{"code":"TPD_SHARDS_MISSING","missing":[{"shard":"s1","reason":"..."}]}}
 *           {"error":{"code":"TPD_SHARDS_MISSING","message":"...","cut":{"shard":"s1","reason":"..."},"missing":[...]}}
 *   CSV     partial,,TPD_SHARDS_MISSING,"<the same object as JSON, without code>"
 *           error,,TPD_SHARDS_MISSING,"<the same object as JSON, without code>"
 *
 * `partial` ends an answer that is complete for every shard it does not name; `error` ends
 * one cut short (the connection then closes without the end of the chunked body).
 */
import type { MissingShard } from './fanout.js';
import { compareShardIds } from './merge-tie.js';

/** A merged history stream cut because `lost` failed after the answer began. */
export class HistoryCut extends Error {
  readonly code = 'TPD_SHARDS_MISSING';
  /** Every shard the answer lacks: those missing from the start and the one lost. */
  readonly missing: MissingShard[];

  constructor(readonly lost: MissingShard, missingBefore: readonly MissingShard[]) {
    super(`shard ${lost.shard} was lost mid-stream (${lost.reason}): this history is cut short here; it is complete up to the record before for every shard not missing`);
    this.missing = [...missingBefore, lost].sort((a, b) => compareShardIds(a.shard, b.shard));
  }
}

/** A CSV field: quoted when it holds a quote, a comma or a line break (as server/history.ts). */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The record that ends an answer lacking `missing` (complete for every other shard). */
export function partialRecord(format: 'ndjson' | 'csv', missing: readonly MissingShard[]): string {
  if (format === 'ndjson') return `${JSON.stringify({ partial: { code: 'TPD_SHARDS_MISSING', missing } })}\n`;
  return `partial,,TPD_SHARDS_MISSING,${csvField(JSON.stringify({ missing }))}\n`;
}

/** The record that ends an answer cut short by a lost shard. */
export function cutRecord(format: 'ndjson' | 'csv', cut: HistoryCut): string {
  const detail = { message: cut.message, cut: cut.lost, missing: cut.missing };
  if (format === 'ndjson') return `${JSON.stringify({ error: { code: cut.code, ...detail } })}\n`;
  return `error,,TPD_SHARDS_MISSING,${csvField(JSON.stringify(detail))}\n`;
}
