/**
 * When did a shard last update a path? A merged state needs it for the paths that several
 * shards hold (ownership moved, globs overlapped during a rebalance, a restarted shard
 * recorded again): their values are then decided as a replay of the merged history would
 * leave them, by the time of each shard's newest update and the tie rule (./merge-tie.ts),
 * not by the time of the shards' answers (docs/cluster.md, "The tie rule").
 *
 * Shard side: lastUpdateTimes walks the archive back from the time asked, in rounds of
 * batches that hold one of the paths (clusterUpdateTimesFirstRoundBatches, doubling up to
 * clusterUpdateTimesStepBatches), reading only those paths' columns, until each path's
 * newest update is found or the archive begins. Merging side: resolveShared asks each
 * shard, for its shared paths only, POST /api/v1/shard/updated; a path no shard shares
 * costs nothing.
 */
import { validateGlobs } from '../../protocol/glob.js';
import { readsUntil, type Archive } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import { stopIfGone } from '../client-gone.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { reasonOf, shardJson, sortMissing, unavailable, type Fanned, type MissingShard, type ShardAnswer } from './fanout.js';
import { sharedPaths, type StateAnswer, type UpdateTimes } from './merge-answers.js';

/** The shard route that answers update times (server/routes/cluster-shard-times.ts). */
export const UPDATE_TIMES_ROUTE = '/api/v1/shard/updated';

/** Body of POST /api/v1/shard/updated: `at_us` null asks as of the end of committed data. */
export interface UpdateTimesQuery {
  at_us: number | null;
  paths: string[];
}

/** Its answer: per path asked, in order, the time of its newest update at or before at_us (null: none). */
export interface UpdateTimesAnswer {
  times: Array<number | null>;
}

/**
 * A glob that selects at least `path` (the storage cursor filters by globs): the characters
 * a glob reserves become `*`, as docs/globs.md says; a path no glob can hold selects all.
 */
function globOf(path: string): string {
  const g = path.replace(/[[\]?{}]/g, '*').replace(/\*+/g, '*');
  try {
    validateGlobs([g]);
    return g;
  } catch {
    return '/**';
  }
}

/**
 * Per path, the time of its newest committed update at or before `atUs` (null: the end),
 * or null when the archive holds none (never recorded, or only in files retention removed).
 * `signal` (the asking node's request gone: it aborted it, or its client left) stops the
 * walk at its next round or block with the signal's reason: a path updated long ago walks
 * back over the whole archive (a million batches: seconds).
 */
export async function lastUpdateTimes(archive: Archive, paths: readonly string[], atUs: number | null, signal?: AbortSignal): Promise<Array<number | null>> {
  const out: Array<number | null> = paths.map(() => null);
  const want = new Map<number, number[]>();
  paths.forEach((p, i) => {
    const id = archive.pathIds.get(p);
    if (id !== undefined) want.set(id, [...(want.get(id) ?? []), i]);
  });
  if (want.size === 0) return out;
  const c = archive.cursor({ filter: [...new Set(paths.map(globOf))], selective: true, onFetchWait: readsUntil(undefined, signal) });
  let upperUs = atUs ?? Number.MAX_SAFE_INTEGER;
  // Rounds grow: a path updated often is found among the first few batches that hold one
  // of the paths, a path updated long ago in few, longer rounds.
  for (let round: number = SERVER_LIMITS.clusterUpdateTimesFirstRoundBatches; want.size > 0; round = Math.min(round * 2, SERVER_LIMITS.clusterUpdateTimesStepBatches)) {
    stopIfGone(signal);
    await c.seek({ ts: upperUs });
    await c.seek({ batches: -round });
    const startUs = c.pos;
    // Forward over the round: a later update of a path overwrites an earlier one.
    const found = new Map<number, number>();
    for (let b = await c.nextRaw(); b !== null && b.ts <= upperUs; b = await c.nextRaw()) {
      for (let i = b.from; i < b.to; i++) if (want.has(b.ids[i] as number)) found.set(b.ids[i] as number, b.ts);
    }
    for (const [id, ts] of found) {
      for (const i of want.get(id) as number[]) out[i] = ts;
      want.delete(id);
    }
    // Rounds go strictly back in time (timestamps are strictly increasing in an archive).
    if (startUs === null || startUs >= upperUs) break;
    upperUs = startUs;
  }
  return out;
}

/** Asks one shard the update times of `paths`, clusterUpdateTimesPathsMax at a time. */
async function askShard(dir: ShardDirectory, shard: ShardInfo, paths: readonly string[], atUs: number | null, signal: AbortSignal | undefined): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  for (let i = 0; i < paths.length; i += SERVER_LIMITS.clusterUpdateTimesPathsMax) {
    const part = paths.slice(i, i + SERVER_LIMITS.clusterUpdateTimesPathsMax);
    const body: UpdateTimesQuery = { at_us: atUs, paths: part };
    const valid = (v: unknown): v is UpdateTimesAnswer => {
      const times = (v as Partial<UpdateTimesAnswer> | null)?.times;
      return Array.isArray(times) && times.length === part.length && times.every((t) => t === null || Number.isSafeInteger(t));
    };
    const { times } = (await shardJson(dir, shard, UPDATE_TIMES_ROUTE, valid, { json: JSON.stringify(body), signal })).value;
    part.forEach((p, k) => out.set(p, times[k] as number | null));
  }
  return out;
}

/** A shard's state answer, as updateTimesFor needs it. */
export interface StateOf {
  index: number;
  shard: ShardInfo;
  value: StateAnswer;
}

/**
 * The update times of the paths the answers share, each shard asked as of `atOf(shard)`
 * (the time its answer was made at; null: its committed end), and the shards that could
 * not say (missing: their values must not be merged, their place in the order is unknown).
 * The merged state (resolveShared) and a merged session's state frame use it. `signal`: the
 * merged read's client leaving aborts the requests and throws TPD_CANCELED (counted).
 */
export async function updateTimesFor(dir: ShardDirectory, answers: readonly StateOf[], atOf: (shard: ShardInfo) => number | null, signal?: AbortSignal): Promise<{ times: UpdateTimes; failed: MissingShard[] }> {
  const shared = sharedPaths(answers.map((a) => ({ index: a.index, shard: a.shard.id, value: a.value, horizonUs: null })));
  const times = new Map<number, Map<string, number | null>>();
  const failed: MissingShard[] = [];
  const asking = answers.filter((a) => shared.has(a.index));
  const settled = await Promise.allSettled(asking.map((a) => askShard(dir, a.shard, shared.get(a.index) as string[], atOf(a.shard), signal)));
  stopIfGone(signal);
  settled.forEach((r, k) => {
    const a = asking[k] as StateOf;
    if (r.status === 'fulfilled') times.set(a.index, r.value);
    else failed.push({ shard: a.shard.id, reason: reasonOf(r.reason) });
  });
  return { times, failed };
}

/**
 * The shards' state answers at `atUs` (undefined: latest), with the update times of the
 * paths they share. A shard that cannot say when it updated them is named missing and its
 * answer dropped: a value whose place in the merged order is unknown is not guessed.
 */
export async function resolveShared(dir: ShardDirectory, fanned: Fanned<StateAnswer>, atUs: number | undefined, signal?: AbortSignal): Promise<{ answers: Array<ShardAnswer<StateAnswer>>; times: UpdateTimes; missing: MissingShard[] }> {
  const { times, failed } = await updateTimesFor(dir, fanned.answers, () => atUs ?? null, signal);
  if (failed.length === 0) return { answers: fanned.answers, times, missing: fanned.missing };
  const answers = fanned.answers.filter((a) => !failed.some((m) => m.shard === a.shard.id));
  const missing = sortMissing([...fanned.missing, ...failed]);
  if (answers.length === 0) throw unavailable(missing);
  // Dropping a shard may leave a path to one shard only; its value then stands without a time.
  return { answers, times, missing };
}
