/**
 * A ShardDirectory over a fixed list of shards (id and URL), for a cluster without Redis
 * membership, and for tests. Liveness and horizon come from probing each shard's
 * GET /api/v1/shard (scope=local) at most every clusterShardProbeCacheMs, each probe bounded
 * by clusterShardProbeTimeoutMs: a shard that does not answer is listed, not live, so merged
 * reads name it missing. Concurrent callers share one probe round.
 */
import { TapedeckError } from '../../protocol/errors.js';
import { SERVER_LIMITS } from '../limits.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { shardJson } from './fanout.js';
import { isShardProbe } from './merge-answers.js';

export interface StaticShard {
  id: string;
  url: string;
  globs?: readonly string[];
}

export type { ShardProbe } from './merge-answers.js';

export class StaticDirectory implements ShardDirectory {
  readonly self: string;
  private readonly list: readonly StaticShard[];
  private last: { atMs: number; shards: Promise<readonly ShardInfo[]> } | undefined;
  /** What each shard last answered: a shard that stops answering keeps its last horizon. */
  private readonly known = new Map<string, { horizonUs: number; renewedMs: number }>();

  readonly authorization: string | undefined;

  /** `token`: a bearer token with the read scope on every shard, if they require one. */
  constructor(self: string, shards: readonly StaticShard[], token?: string) {
    this.authorization = token === undefined ? undefined : `Bearer ${token}`;
    const ids = new Set<string>();
    for (const s of shards) {
      if (ids.has(s.id)) throw new TapedeckError('TPD_BAD_ARGUMENT', `shard id ${JSON.stringify(s.id)} is listed twice`);
      ids.add(s.id);
      if (!/^https?:\/\//.test(s.url)) throw new TapedeckError('TPD_BAD_ARGUMENT', `shard ${s.id}: url must be http(s)://..., got ${JSON.stringify(s.url)}`);
    }
    this.self = self;
    this.list = shards;
  }

  shards(): Promise<readonly ShardInfo[]> {
    const now = Date.now();
    if (!this.last || now - this.last.atMs >= SERVER_LIMITS.clusterShardProbeCacheMs) {
      this.last = { atMs: now, shards: Promise.all(this.list.map((s) => this.probe(s))) };
    }
    return this.last.shards;
  }

  private async probe(s: StaticShard): Promise<ShardInfo> {
    const base = { id: s.id, url: s.url, globs: s.globs ?? [] };
    try {
      const { value: p } = await shardJson(this, base, '/api/v1/shard', isShardProbe, { timeoutMs: SERVER_LIMITS.clusterShardProbeTimeoutMs, bytesMax: SERVER_LIMITS.clusterShardProbeBytesMax });
      const known = { horizonUs: p.horizon_us ?? 0, renewedMs: Date.now() };
      this.known.set(s.id, known);
      return { ...base, ...known, live: true };
    } catch {
      const known = this.known.get(s.id);
      return { ...base, horizonUs: known?.horizonUs ?? 0, renewedMs: known?.renewedMs ?? 0, live: false };
    }
  }
}
