/**
 * GET /api/v1/ha: role, lease holder, fencing token, buffer depth, last published batch.
 * POST /api/v1/ha/control (admin scope): { "action": "force_active" | "force_standby" |
 * "release" | "refresh_timestamp" }.
 */
import type { FastifyPluginAsync } from 'fastify';
import { TapedeckError } from '../../protocol/errors.js';
import type { HaRuntime } from '../ha/runtime.js';

export interface HaRoutesOptions {
  ha: HaRuntime | undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export const haRoutes: FastifyPluginAsync<HaRoutesOptions> = async (app, opts) => {
  const view = () => {
    const v = opts.ha?.view();
    const h = v?.ha ?? null;
    const s = v?.sink ?? null;
    return {
      enabled: v?.enabled ?? false,
      sink: s !== null,
      id: h?.id ?? null,
      role: h ? h.role : s ? 'active' : null,
      redis: h?.redis ?? null,
      lease_holder: h?.leaseHolder ?? null,
      fencing_token: h?.fencingToken ?? null,
      forced: h?.forced ?? null,
      started: h ? iso(h.startedMs) : null,
      transitions: h?.transitions ?? 0,
      publishing: s?.publishing ?? false,
      buffer_depth: s?.bufferDepth ?? 0,
      queue_depth: s?.queueDepth ?? 0,
      published: s?.published ?? 0,
      dropped: s?.dropped ?? 0,
      uncertain_promotions: s?.uncertainPromotions ?? 0,
      buffer_overflows: s?.bufferOverflows ?? 0,
      foreign_messages: s?.foreignMessages ?? 0,
      tail_read_at: s?.tailReadAtMs != null ? iso(s.tailReadAtMs) : null,
      last_published: s?.lastPublished ? { stream: s.lastPublished.stream, seq: s.lastPublished.seq, ts: s.lastPublished.ts } : null,
    };
  };
  app.get('/api/v1/ha', { schema: { response: { 200: { type: 'object', additionalProperties: true } } } }, async () => view());
  app.post('/api/v1/ha/control', {
    config: { scope: 'admin' },
    schema: {
      body: { type: 'object', required: ['action'], additionalProperties: false, properties: { action: { enum: ['force_active', 'force_standby', 'release', 'refresh_timestamp'] } } },
      response: { 200: { type: 'object', additionalProperties: true } },
    },
  }, async (req) => {
    const c = opts.ha?.coordinator;
    if (!c) throw new TapedeckError('TPD_HA_DISABLED', 'active/standby is not configured (no ha section)');
    const { action } = req.body as { action: string };
    try {
      if (action === 'force_active') await c.forceActive();
      else if (action === 'force_standby') await c.forceStandby();
      else if (action === 'release') await c.releaseForce();
      else await c.refreshTimestamp();
    } catch (err) {
      throw new TapedeckError('TPD_HA_UNAVAILABLE', `Redis did not take the ${action}: ${(err as Error).message}`);
    }
    return view();
  });
};
