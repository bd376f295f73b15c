/**
 * The resolved `cluster` section (docs/cluster.md): which cluster this recorder is a shard
 * of, its shard id, the URL other nodes reach it at, the Redis that holds membership, the
 * globs it owns for push and poll sources, and the lease TTL.
 */

export interface ClusterConfig {
  /** Cluster name: the Redis key prefix and the default Kafka consumer group. */
  name: string;
  /** This shard's id; the two recorders of an active/standby pair share it. */
  shard: string;
  /** Base URL other nodes reach this shard at; null = the URL the server listens on. */
  advertiseUrl: string | null;
  redisUrl: string;
  /** Globs of the paths this shard owns for push and poll sources. */
  globs: string[];
  leaseTtlMs: number;
  /**
   * How long a shard waits for another shard's in-doubt Kafka batch (docs/cluster.md,
   * "Exactly once") before recording it itself; 0 = wait until that shard resolves it.
   */
  inDoubtMaxWaitMs: number;
  /** Bearer token this node presents to the other shards (read scope there); null = none. */
  token: string | null;
}

