/**
 * POST /api/v1/shard/updated  { at_us, paths }  ->  { at_us, times }: when this shard last
 * updated each path, at or before `at_us` (null: as of its committed end), null where it
 * holds no update of it. Asked by a node merging a cluster's state for the paths several
 * shards hold (server/cluster/merge-update-times.ts, docs/cluster.md, "The tie rule").
 * Answers for this process's archive only, whatever the cluster; POST because a list of
 * paths may not fit a URL.
 */
import type { FastifyPluginAsync } from 'fastify';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { lastUpdateTimes, UPDATE_TIMES_ROUTE, type UpdateTimesQuery } from '../cluster/merge-update-times.js';
import { HORIZON_HEADER, horizonHeader, horizonOf } from '../horizon.js';
import { SERVER_LIMITS } from '../limits.js';
import { clientGone, countedIfGone } from '../client-gone.js';

const US = { type: ['integer', 'null'], minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

export const shardTimesRoutes: FastifyPluginAsync = async (app) => {
  app.post<{ Body: UpdateTimesQuery }>(UPDATE_TIMES_ROUTE, {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { scope: { enum: ['local', 'cluster'] } } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['at_us', 'paths'],
        properties: {
          at_us: US,
          paths: { type: 'array', maxItems: SERVER_LIMITS.clusterUpdateTimesPathsMax, items: { type: 'string', minLength: 1, maxLength: PROTOCOL_LIMITS.pathCharsMax } },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['at_us', 'times'],
          properties: { at_us: US, times: { type: 'array', items: US } },
        },
      },
    },
  }, async (req, reply) => {
    reply.header(HORIZON_HEADER, horizonHeader(horizonOf(app.archive.lastTs)));
    // The merging node aborts its request when its own client leaves (server/cluster/fanout.ts): the walk stops too.
    const signal = clientGone(reply);
    return countedIfGone(signal, async () => ({ at_us: req.body.at_us, times: await lastUpdateTimes(app.archive, req.body.paths, req.body.at_us, signal) }));
  });
};
