/**
 * GET /api/v1/cluster/status (scope read; a cluster only): this shard as it sees itself
 * (docs/cluster.md): its membership (Redis reachable, registered, lease held), the shards
 * it last read from Redis (what its ownership checks use), the poll updates it left to
 * their owners, and each Kafka source's fence counters (claims, skipped offsets, waits on
 * another shard's in-doubt batch, settled intents, forced takeovers).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ClusterRuntime } from '../cluster/runtime.js';

export interface ClusterStatusRoutesOptions {
  cluster: ClusterRuntime;
}

export const clusterStatusRoutes: FastifyPluginAsync<ClusterStatusRoutesOptions> = async (app, opts) => {
  app.get('/api/v1/cluster/status', async () => {
    const s = opts.cluster.status();
    const known = opts.cluster.directory?.known() ?? [];
    return {
      shard: opts.cluster.config.shard,
      redis: s?.membership.redis ?? 'unreachable',
      registered: s?.membership.registered ?? false,
      lease_holder: s?.membership.leaseHolder ?? false,
      renewals: s?.membership.renewals ?? 0,
      known_shards: known.map((k) => ({ id: k.id, url: k.url, globs: k.globs, live: k.live, horizon_us: k.horizonUs })),
      not_owned_updates: s?.notOwnedUpdates ?? 0,
      kafka: (s?.kafka ?? []).map((k) => ({
        source: k.source, group: k.group, claims: k.claims, skipped_offsets: k.skippedOffsets, waits: k.waits, settled: k.settled, forced_takeovers: k.forcedTakeovers, lost_intents: k.lostIntents, stale_fences: k.staleFences,
      })),
    };
  });
};
