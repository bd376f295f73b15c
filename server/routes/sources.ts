/** GET /api/v1/sources: each source's health (last success, last error, failures, staleness). */
import type { FastifyPluginAsync } from 'fastify';
import type { Source } from '../sources/source.js';

export interface SourceRoutesOptions {
  sources: readonly Source[];
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export const sourceRoutes: FastifyPluginAsync<SourceRoutesOptions> = async (app, opts) => {
  app.get('/api/v1/sources', {
    schema: {
      response: {
        200: {
          type: 'object',
          required: ['sources'],
          properties: {
            sources: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'type', 'status', 'last_success', 'last_error', 'consecutive_failures', 'staleness_ms'],
                properties: {
                  name: { type: 'string' },
                  type: { type: 'string' },
                  status: { enum: ['starting', 'ok', 'failing', 'stopped'] },
                  last_success: { type: ['string', 'null'] },
                  last_error: {
                    anyOf: [{ type: 'null' }, { type: 'object', properties: { at: { type: 'string' }, message: { type: 'string' } } }],
                  },
                  consecutive_failures: { type: 'integer' },
                  staleness_ms: { type: ['integer', 'null'] },
                  polls: { type: 'integer' },
                  failures: { type: 'integer' },
                  not_modified: { type: 'integer' },
                  batches: { type: 'integer' },
                  updates: { type: 'integer' },
                },
              },
            },
          },
        },
      },
    },
  }, async () => ({
    sources: opts.sources.map((s) => {
      const h = s.health();
      return {
        name: h.name,
        type: h.type,
        status: h.status,
        last_success: iso(h.lastSuccessMs),
        last_error: h.lastError && { at: iso(h.lastError.atMs), message: h.lastError.message },
        consecutive_failures: h.consecutiveFailures,
        staleness_ms: h.stalenessMs,
        polls: h.polls,
        failures: h.failures,
        not_modified: h.notModified,
        batches: h.batches,
        updates: h.updates,
      };
    }),
  }));
};
