/**
 * The state frame of a merged session (./merged-session-cursor.ts): every shard's state at
 * the session's position, merged (./merge-answers.ts), keyed by the merged path table's ids.
 * A shard that still owes its batch at the position's time (it comes after the position's
 * shard in id order) answers for just before that time. Every path the shards know is
 * registered first, so the state frame lists it (null where it has no value yet).
 */
import { TapedeckError } from '../../protocol/errors.js';
import { reviveValue } from '../../protocol/frames.js';
import { formatTs } from '../../protocol/time.js';
import type { Value } from '../../protocol/value.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { fanoutJson, liveShards, queryString, shardJson, reasonOf, type MissingShard } from './fanout.js';
import { isPathsAnswer, isStateAnswer, mergeStates } from './merge-answers.js';
import { compareShardIds } from './merge-tie.js';
import { updateTimesFor } from './merge-update-times.js';

/** A merged session's position: `ts` null before any batch; shards up to `shard` in id order delivered their batch at `ts`. */
export interface MergedPosition {
  ts: number | null;
  shard: string;
}

/**
 * The merged state at `at` for the paths `filter` takes (every path when empty); `lose` is
 * told of each shard that fails (a shard's own 4xx is the client's error, thrown).
 */
export async function mergedStateAt(dir: ShardDirectory, filter: readonly string[], at: MergedPosition, idOf: (path: string) => number, lose: (m: MissingShard) => void): Promise<Map<number, Value>> {
  const out = new Map<number, Value>();
  const glob = filter.length > 0 ? filter : undefined;
  const paths = await fanoutJson(dir, '/api/v1/paths' + queryString({ glob }), isPathsAnswer);
  for (const m of paths.missing) lose(m);
  for (const a of paths.answers) for (const p of a.value.paths) idOf(p);
  const { ts, shard } = at;
  if (ts === null) return out;
  const { live } = await liveShards(dir);
  const atOf = (s: ShardInfo): number => (compareShardIds(s.id, shard) <= 0 ? ts : ts - 1);
  const answers = await Promise.all(live.map(async ({ shard: s, index }) => {
    try {
      const o = await shardJson(dir, s, '/api/v1/state' + queryString({ glob, at: formatTs(atOf(s)) }), isStateAnswer);
      return { index, shard: s, value: o.value };
    } catch (err) {
      if (err instanceof TapedeckError && err.status < 500) throw err;
      lose({ shard: s.id, reason: reasonOf(err) });
      return undefined;
    }
  }));
  const ok = answers.filter((a) => a !== undefined);
  // A path several shards hold takes the value of its newest update (merge-update-times.ts),
  // as merged /state does; a shard that cannot say when is missing, its values not guessed.
  const { times, failed } = await updateTimesFor(dir, ok, atOf);
  for (const m of failed) lose(m);
  const kept = ok.filter((a) => !failed.some((m) => m.shard === a.shard.id));
  const merged = mergeStates(kept.map((a) => ({ index: a.index, shard: a.shard.id, value: a.value, horizonUs: null })), times);
  for (const p of Object.keys(merged.values)) out.set(idOf(p), reviveValue(merged.values[p], p));
  return out;
}
