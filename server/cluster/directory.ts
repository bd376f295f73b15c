/**
 * The cluster's shard directory: the contract between membership (who is in the cluster,
 * what each shard owns, how far each has durably recorded) and the merged reads that fan
 * out over the shards (docs/cluster.md). Membership lives in Redis under leases
 * (server/cluster/membership.ts); readers only see this interface.
 */

/** One shard as the directory knows it. */
export interface ShardInfo {
  /** Stable shard id from the config (`cluster.shard`); an active/standby pair shares it. */
  readonly id: string;
  /** Base URL of the shard's HTTP API as other nodes reach it (`cluster.advertise_url`). */
  readonly url: string;
  /** Globs of the paths this shard owns for push and poll sources (empty: owns none). */
  readonly globs: readonly string[];
  /** The shard's committed horizon (µs since the epoch): every batch at or before it is durable. */
  readonly horizonUs: number;
  /** When the shard last renewed its lease (ms since the epoch, Redis' clock). */
  readonly renewedMs: number;
  /** false once the lease expired: the shard is known but not alive. */
  readonly live: boolean;
  /** Why a shard that is not live cannot be asked, when it is not its lease (e.g. its registry entry is unreadable). */
  readonly problem?: string;
}

/** What a merged read needs from membership. */
export interface ShardDirectory {
  /** This node's own shard id. */
  readonly self: string;
  /**
   * The Authorization header this node presents to the other shards (`Bearer <token>`, a
   * token with the read scope on every shard: `cluster.token`); undefined = none.
   */
  readonly authorization?: string | undefined;
  /**
   * Every shard ever registered in the cluster and not removed by an operator, live or not.
   * A shard that is known but not live is reported as missing by merged reads, never
   * silently left out. Throws TPD_CLUSTER_UNAVAILABLE when membership cannot be read.
   */
  shards(): Promise<readonly ShardInfo[]>;
}
