/**
 * GET /api/v1/archive: the archive's files with their time ranges, where they live and, when
 * archive hooks run, whether put has shipped them; plus the hooks' counters. The web player
 * draws its timeline from this; operators see local and remote files and failed puts.
 */
import type { FastifyInstance } from 'fastify';
import { formatTs } from '../../protocol/time.js';
import type { ColdStorage } from '../../storage/index.js';

const PUT_SCHEMA = {
  type: ['object', 'null'],
  properties: {
    status: { type: 'string', enum: ['pending', 'done', 'failed'] },
    attempts: { type: 'integer' },
    error: { type: ['string', 'null'] },
    updated: { type: ['string', 'null'] },
  },
} as const;

const FILE_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    seq: { type: 'integer' },
    location: { type: 'string', enum: ['local', 'remote', 'missing'] },
    sealed: { type: 'boolean' },
    /** False for a remote file known only by name (list): its times are estimates until fetched. */
    indexed: { type: 'boolean' },
    firstTs: { type: ['integer', 'null'] },
    lastTs: { type: ['integer', 'null'] },
    first: { type: ['string', 'null'] },
    last: { type: ['string', 'null'] },
    bytes: { type: 'integer' },
    /** null: `current`, or no put hook configured. */
    put: PUT_SCHEMA,
  },
} as const;

const RUNS_SCHEMA = { type: 'object', properties: { ok: { type: 'integer' }, failed: { type: 'integer' }, timedOut: { type: 'integer' } } } as const;

const HOOKS_SCHEMA = {
  type: ['object', 'null'],
  properties: {
    runs: { type: 'object', properties: { put: RUNS_SCHEMA, get: RUNS_SCHEMA, list: RUNS_SCHEMA } },
    failures: { type: 'object', properties: { put: { type: 'integer' }, get: { type: 'integer' }, list: { type: 'integer' } } },
    putsPending: { type: 'integer' },
    putQueue: { type: 'integer' },
    putsDeferred: { type: 'integer' },
    fetchesInFlight: { type: 'integer' },
    fetched: { type: 'integer' },
    evicted: { type: 'integer' },
    listRejected: { type: 'integer' },
    lastList: { type: ['string', 'null'] },
    lastListError: { type: ['string', 'null'] },
    retention: { type: 'object', properties: { maxAgeMs: { type: 'integer' }, maxBytes: { type: 'integer' } } },
  },
} as const;

export interface ArchiveRouteOptions {
  /** Archive hooks and retention, when configured: each file's put status and the hooks' state. */
  cold?: ColdStorage | undefined;
}

export async function archiveRoutes(app: FastifyInstance, opts: ArchiveRouteOptions): Promise<void> {
  const { cold } = opts;
  app.get('/api/v1/archive', {
    schema: {
      response: {
        200: {
          type: 'object',
          properties: {
            archiveId: { type: 'string' },
            firstTs: { type: ['integer', 'null'] },
            lastTs: { type: ['integer', 'null'] },
            paths: { type: 'integer' },
            files: { type: 'array', items: FILE_SCHEMA },
            hooks: HOOKS_SCHEMA,
          },
        },
      },
    },
  }, async () => {
    const a = app.archive;
    const files = a.files.map((f) => {
      const put = cold?.putStatus(f.name);
      return {
        name: f.name,
        seq: f.seq,
        location: f.location,
        sealed: f.sealed,
        indexed: f.committedBytes > 0,
        firstTs: f.firstTs,
        lastTs: f.lastTs,
        first: f.firstTs === null ? null : formatTs(f.firstTs),
        last: f.lastTs === null ? null : formatTs(f.lastTs),
        bytes: f.committedBytes,
        put: put ? { status: put.status, attempts: put.attempts, error: put.error, updated: put.updatedMs > 0 ? new Date(put.updatedMs).toISOString() : null } : null,
      };
    });
    const withData = files.filter((f) => f.firstTs !== null);
    const s = cold?.stats;
    return {
      archiveId: a.archiveId,
      firstTs: withData[0]?.firstTs ?? null,
      lastTs: withData.length > 0 ? a.lastTs : null,
      paths: a.paths.length,
      files,
      hooks: s && cold ? {
        ...s.hooks,
        putsPending: s.putsPending,
        putQueue: s.putQueue,
        putsDeferred: s.putsDeferred,
        fetchesInFlight: s.fetchesInFlight,
        fetched: s.fetched,
        evicted: s.evicted,
        listRejected: s.listRejected,
        lastList: s.lastListMs === null ? null : new Date(s.lastListMs).toISOString(),
        lastListError: s.lastListError,
        retention: { maxAgeMs: cold.retention.maxAgeMs, maxBytes: cold.retention.maxBytes },
      } : null,
    };
  });
}
