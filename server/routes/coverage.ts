/**
 * GET /api/v1/coverage?start=&end=  where the record is blind between two times: the
 * recording runs, the gaps between them (recorder stopped or crashed) and each source's
 * outages (docs/recording.md, "Coverage"). Times as in every query (RFC 3339, epoch, or
 * relative to now); the default range is everything.
 */
import type { FastifyPluginAsync } from 'fastify';
import { TapedeckError } from '../../protocol/errors.js';
import { wallClockUs } from '../../storage/index.js';
import type { CoverageLog } from '../coverage.js';
import { formatTs, parseWallTime } from '../../protocol/time.js';
import { horizonOf } from '../horizon.js';
import type { ShardDirectory } from '../cluster/directory.js';
import { SCOPE_LOCAL } from '../cluster/fanout.js';
import { mergedCoverage } from './cluster-queries.js';
import { PARTIAL, SCOPE } from './queries.js';

export interface CoverageRoutesOptions {
  coverage: CoverageLog;
  /** The cluster's shards: coverage of every shard unless asked `scope=local` (docs/cluster.md, "Merged reads"). */
  directory?: ShardDirectory | undefined;
}

const TIME = { type: 'string', minLength: 1, maxLength: 64 };
const T = { type: ['string', 'null'] };
const US = { type: ['integer', 'null'] };

const fmt = (us: number | null): string | null => (us === null ? null : formatTs(us));

export const coverageRoutes: FastifyPluginAsync<CoverageRoutesOptions> = async (app, opts) => {
  app.get<{ Querystring: { start?: string; end?: string; scope?: 'local' | 'cluster' } }>('/api/v1/coverage', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { start: TIME, end: TIME, scope: SCOPE } },
      response: {
        200: {
          type: 'object',
          required: ['horizon', 'runs', 'gaps', 'outages'],
          properties: {
            horizon: T,
            horizon_us: US,
            // Merged answers: each shard's horizon; each run, gap and outage names its shard.
            shards: { type: 'array', items: { type: 'object', properties: { shard: { type: 'string' }, horizon: T, horizon_us: US } } },
            partial: PARTIAL,
            runs: {
              type: 'array',
              items: { type: 'object', properties: { shard: { type: 'string' }, run: { type: 'string' }, started_at: { type: 'string' }, first: T, last: T, first_us: US, last_us: US, ended: { enum: ['running', 'stopped', 'crashed'] } } },
            },
            gaps: {
              type: 'array',
              items: { type: 'object', properties: { shard: { type: 'string' }, start: T, end: T, start_us: US, end_us: US, reason: { type: 'string' } } },
            },
            outages: {
              type: 'array',
              items: { type: 'object', properties: { shard: { type: 'string' }, source: { type: 'string' }, start: T, end: T, start_us: US, end_us: US, reason: { type: 'string' } } },
            },
          },
        },
      },
    },
  }, async (req, reply) => {
    const now = wallClockUs();
    const startUs = req.query.start === undefined ? 0 : parseWallTime(req.query.start, now, 'start');
    const endUs = req.query.end === undefined ? Number.MAX_SAFE_INTEGER : parseWallTime(req.query.end, now, 'end');
    if (endUs < startUs) throw new TapedeckError('TPD_BAD_ARGUMENT', 'end is before start');
    if (opts.directory && req.query.scope !== SCOPE_LOCAL) return mergedCoverage(opts.directory, startUs, req.query.end === undefined ? undefined : endUs, reply);
    const c = opts.coverage.between(startUs, endUs);
    const horizon = horizonOf(app.archive.lastTs);
    return {
      horizon: fmt(horizon),
      horizon_us: horizon,
      runs: c.runs.map((r) => ({
        run: r.run, started_at: formatTs(r.startedAtUs), first: fmt(r.firstTsUs), last: fmt(r.lastTsUs),
        first_us: r.firstTsUs, last_us: r.lastTsUs, ended: r.ended,
      })),
      gaps: c.gaps.map((g) => ({ start: fmt(g.startUs), end: fmt(g.endUs), start_us: g.startUs, end_us: g.endUs, reason: g.reason })),
      outages: c.outages.map((o) => ({ source: o.source, start: fmt(o.startUs), end: fmt(o.endUs), start_us: o.startUs, end_us: o.endUs, reason: o.reason })),
    };
  });
};
