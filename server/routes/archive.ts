/**
 * GET /api/v1/archive: the archive's files with their time ranges and where they live.
 * The web player draws its timeline from this; operators see local and remote files.
 */
import type { FastifyInstance } from 'fastify';
import { formatTs } from '../../protocol/time.js';

const FILE_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    seq: { type: 'integer' },
    location: { type: 'string', enum: ['local', 'remote', 'missing'] },
    sealed: { type: 'boolean' },
    firstTs: { type: ['integer', 'null'] },
    lastTs: { type: ['integer', 'null'] },
    first: { type: ['string', 'null'] },
    last: { type: ['string', 'null'] },
    bytes: { type: 'integer' },
  },
} as const;

export async function archiveRoutes(app: FastifyInstance): Promise<void> {
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
          },
        },
      },
    },
  }, async () => {
    const a = app.archive;
    const files = a.files.map((f) => ({
      name: f.name,
      seq: f.seq,
      location: f.location,
      sealed: f.sealed,
      firstTs: f.firstTs,
      lastTs: f.lastTs,
      first: f.firstTs === null ? null : formatTs(f.firstTs),
      last: f.lastTs === null ? null : formatTs(f.lastTs),
      bytes: f.committedBytes,
    }));
    const withData = files.filter((f) => f.firstTs !== null);
    return {
      archiveId: a.archiveId,
      firstTs: withData[0]?.firstTs ?? null,
      lastTs: withData.length > 0 ? a.lastTs : null,
      paths: a.paths.length,
      files,
    };
  });
}
