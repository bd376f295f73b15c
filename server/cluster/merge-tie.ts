/**
 * The tie rule of merged reads (docs/cluster.md, "The tie rule"), defined once: records of
 * several shards are ordered by timestamp, equal timestamps by shard id (code-unit order of
 * the ids, whatever order the directory lists them in), and within one shard in its own
 * order. A replay of the merged order applies the later record last, so where a value is
 * decided (state), the record later by this rule wins. History, coverage, state and merged
 * sessions all order by compareTie; nothing else orders shards.
 */

/** The shards' id order. A shard's index in this order may stand for its id (see compareTie). */
export function compareShardIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * (ts, shard) order: negative when (ta, sa) comes first. `sa`/`sb` are shard ids, or the
 * shards' indexes in compareShardIds order (the same order, cheaper in a heap).
 */
export function compareTie<S extends string | number>(ta: number, sa: S, tb: number, sb: S): number {
  return ta !== tb ? ta - tb : sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** The list sorted by the shards' id order (a copy). */
export function byShardId<T extends { readonly id: string }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => compareShardIds(a.id, b.id));
}
