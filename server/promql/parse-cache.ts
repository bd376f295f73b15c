/**
 * Parsed queries kept by their text: a dashboard sends the same few queries at every
 * refresh, and parsing one (the upstream grammar, then conversion, regex compilation and
 * typing: parse.ts) costs about as much CPU as evaluating a one-series query over a day.
 * The tree is read only (ast.ts: every field readonly; evaluation keeps its per-query state
 * in maps of its own keyed by node), so one tree serves any number of queries, also at
 * once. Queries that fail to parse are not kept: they are parsed, and refused, each time.
 * Bounds: promqlParsedQueriesMax entries of at most promqlParsedQueryCharsMax characters,
 * least recently used dropped first.
 */
import { SERVER_LIMITS } from '../limits.js';
import type { Expr } from './ast.js';
import { parseQuery, parseQuerySliced } from './parse.js';

const parsed = new Map<string, Expr>();

/** parseQuery(text), from the cache when the same text was parsed lately. */
export function parseQueryCached(text: string): Expr {
  return cached(text) ?? keep(text, parseQuery(text));
}

/** parseQuerySliced(text, slice), from the cache when the same text was parsed lately. */
export async function parseQueryCachedSliced(text: string, slice: () => Promise<void>): Promise<Expr> {
  return cached(text) ?? keep(text, await parseQuerySliced(text, slice));
}

function cached(text: string): Expr | undefined {
  const hit = parsed.get(text);
  if (hit) {
    // Most recently used last: a Map iterates in insertion order.
    parsed.delete(text);
    parsed.set(text, hit);
  }
  return hit;
}

function keep(text: string, expr: Expr): Expr {
  if (text.length <= SERVER_LIMITS.promqlParsedQueryCharsMax && SERVER_LIMITS.promqlParsedQueriesMax > 0) {
    while (parsed.size >= SERVER_LIMITS.promqlParsedQueriesMax) parsed.delete(parsed.keys().next().value as string);
    parsed.set(text, expr);
  }
  return expr;
}

/** Entries held (tests). */
export function parsedQueriesHeld(): number {
  return parsed.size;
}
