/**
 * The metadata endpoints: series, label names and label values, optionally narrowed by
 * match[] selectors. A series is listed when its path was first recorded by the end of the
 * range and some archive file holds batches in the range (the archive keeps no per-path last
 * time: a series that stopped before `start` is listed while a file overlaps the range, as
 * Prometheus lists the series of a block that overlaps it; a range with no recorded batch
 * lists nothing, as Prometheus lists nothing for a range past its data).
 */
import type { Archive } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import type { Expr, LabelMatcher } from './ast.js';
import { firstSeenUs, selectSeriesSliced, type SeriesRef } from './catalog.js';
import { Budget } from './load.js';
import { PromError, badData } from './errors.js';
import { labelValue } from './labels.js';
import { parseQuerySliced } from './parse.js';

export interface MetadataQuery {
  matches: string[];
  startMs: number;
  endMs: number;
  /** The client leaving: the matching stops at its next slice (errorType canceled). */
  signal?: AbortSignal | undefined;
}

const tooMany = (): PromError => new PromError('execution', `more than promqlListedMax (${SERVER_LIMITS.promqlListedMax}) series match`, 'TPD_QUERY_LIMIT');

/** Metadata requests have no `timeout` parameter: the longest evaluation's bound. */
async function matchedSeries(archive: Archive, q: MetadataQuery): Promise<SeriesRef[]> {
  const budget = new Budget(performance.now() + SERVER_LIMITS.promqlTimeoutMs, q.signal);
  const out = new Map<number, SeriesRef>();
  if (!recordedWithin(archive, q.startMs * 1000, q.endMs * 1000 + 999)) return [];
  const selectors: Array<readonly LabelMatcher[]> = q.matches.length > 0 ? [] : [[]];
  for (const text of q.matches) selectors.push(await selectorOf(text, budget));
  for (const matchers of selectors) {
    const refs = await selectSeriesSliced(archive, matchers, SERVER_LIMITS.promqlListedMax, tooMany, budget);
    for (const r of refs) {
      if (firstSeenUs(archive, r.id) > q.endMs * 1000 + 999) continue;
      out.set(r.id, r);
      if (out.size > SERVER_LIMITS.promqlListedMax) throw tooMany();
    }
  }
  return [...out.values()];
}

/** Whether a file of the archive (its committed batches: what queries read) has a batch in [fromUs, toUs]. */
function recordedWithin(archive: Archive, fromUs: number, toUs: number): boolean {
  return archive.files.some((f) => f.firstTs !== null && f.lastTs !== null && f.firstTs <= toUs && f.lastTs >= fromUs);
}

async function selectorOf(text: string, budget: Budget): Promise<Extract<Expr, { kind: 'vector' }>['sel']['matchers']> {
  let e: Expr;
  try {
    e = await parseQuerySliced(text, () => budget.slice());
  } catch (err) {
    // Stopped, not refused: the deadline or the client leaving passes through as it is.
    if (err instanceof PromError && (err.errorType === 'canceled' || err.errorType === 'timeout')) throw err;
    throw badData(`invalid parameter "match[]": ${(err as Error).message}`);
  }
  if (e.kind !== 'vector' || e.sel.offsetMs !== 0 || e.sel.at !== undefined) throw badData(`invalid parameter "match[]": ${JSON.stringify(text.slice(0, 80))} is not a series selector`);
  return e.sel.matchers;
}

export async function listSeries(archive: Archive, q: MetadataQuery): Promise<Array<Record<string, string>>> {
  return (await matchedSeries(archive, q)).map((r) => Object.fromEntries(r.metric.labels));
}

export async function listLabelNames(archive: Archive, q: MetadataQuery): Promise<string[]> {
  const names = new Set<string>();
  for (const r of await matchedSeries(archive, q)) for (const [n] of r.metric.labels) names.add(n);
  return [...names].sort();
}

export async function listLabelValues(archive: Archive, name: string, q: MetadataQuery): Promise<string[]> {
  const values = new Set<string>();
  for (const r of await matchedSeries(archive, q)) {
    const v = labelValue(r.metric, name);
    if (v !== '') values.add(v);
  }
  return [...values].sort();
}
