/**
 * GET /stats (latency percentiles per route over a rolling window, poller cycle times and
 * retries, uptime, event-loop delay) and GET /ready (the archive is open and writable, its
 * file system not full, and every required source is fresher than its max staleness; the
 * body names what is not).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { Archive } from '../../storage/index.js';
import type { PollEvent, Source } from '../sources/source.js';
import { isWarmUpRequest } from '../promql/prepare.js';

/** Samples kept per route and per source for percentiles (a ring: newest replace oldest). */
export const STATS_WINDOW_SAMPLES = 1000;
/** Routes tracked at most (distinct route patterns, not URLs). */
const STATS_ROUTES_MAX = 256;

export interface Readiness {
  source: string;
  required: boolean;
  maxStalenessMs: number;
}

export const READINESS_DEFAULT_MAX_STALENESS_MS = 60_000;

class Window {
  private readonly xs = new Float64Array(STATS_WINDOW_SAMPLES);
  private n = 0;
  count = 0;

  add(v: number): void {
    this.xs[this.n % STATS_WINDOW_SAMPLES] = v;
    this.n++;
    this.count++;
  }

  summary(): { count: number; p50: number; p95: number; p99: number; max: number } {
    const s = this.xs.slice(0, Math.min(this.n, STATS_WINDOW_SAMPLES)).sort();
    const at = (p: number): number => (s.length === 0 ? 0 : Number((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number).toFixed(3)));
    return { count: this.count, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s.length === 0 ? 0 : Number((s[s.length - 1] as number).toFixed(3)) };
  }
}

/** The archive is open and its writer (when recording) neither failed nor waits on a full disk. */
function archiveCheck(archive: Archive): { check: string; ok: boolean; detail: string } {
  if (archive.isClosed) return { check: 'archive', ok: false, detail: 'archive is closed' };
  const w = archive.writer;
  if (w?.error) return { check: 'archive', ok: false, detail: `writer failed: ${w.error.message}` };
  const h = w?.health;
  if (h?.state === 'disk_full') {
    return {
      check: 'archive',
      ok: false,
      detail: `archive file system is full since ${new Date(h.since).toISOString()}: recording paused, ${h.bufferedBytes} bytes wait in memory, new data refused (TPD_DISK_FULL) past the buffer limit; it resumes by itself once space is freed`,
    };
  }
  return { check: 'archive', ok: true, detail: 'open' };
}

export function registerStats(app: FastifyInstance, archive: Archive, sources: readonly Source[], readiness: readonly Readiness[] | undefined,
  extraChecks?: () => Array<{ check: string; ok: boolean; detail: string }>): void {
  const started = Date.now();
  const routes = new Map<string, Window>();
  const polls = new Map<string, Window>();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  app.addHook('onClose', async () => loop.disable());
  app.addHook('onResponse', (req, reply, done) => {
    // Not the query path's warm-up at start (server/promql/prepare.ts): users did not ask it.
    if (isWarmUpRequest(req)) return done();
    const key = `${req.method} ${req.routeOptions.url ?? 'unmatched'}`;
    let w = routes.get(key);
    if (!w && routes.size < STATS_ROUTES_MAX) routes.set(key, (w = new Window()));
    w?.add(reply.elapsedTime);
    done();
  });
  for (const s of sources) {
    const w = new Window();
    polls.set(s.name, w);
    const on = (e: PollEvent): void => {
      if (e.durationMs !== undefined) w.add(e.durationMs);
    };
    s.on('poll', on);
    app.addHook('onClose', async () => void s.off('poll', on));
  }
  const rules = new Map((readiness ?? []).map((r) => [r.source, r]));

  app.get('/stats', { schema: { response: { 200: { type: 'object', additionalProperties: true } } } }, async () => ({
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    routesMs: Object.fromEntries([...routes].map(([k, w]) => [k, w.summary()])),
    pollers: Object.fromEntries(sources.map((s) => {
      const h = s.health();
      return [s.name, { type: s.type, status: h.status, cycleMs: polls.get(s.name)?.summary(), polls: h.polls, retries: h.failures, consecutiveFailures: h.consecutiveFailures, notModified: h.notModified }];
    })),
    eventLoopDelayMs: { p50: Number((loop.percentile(50) / 1e6).toFixed(3)), p99: Number((loop.percentile(99) / 1e6).toFixed(3)), max: Number((loop.max / 1e6).toFixed(3)) },
    sessions: app.sessions.size,
  }));

  app.get('/ready', {
    schema: {
      response: {
        200: { type: 'object', properties: { ready: { type: 'boolean' }, checks: { type: 'array', items: { type: 'object', additionalProperties: true } } } },
        503: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } }, checks: { type: 'array', items: { type: 'object', additionalProperties: true } } } },
      },
    },
  }, async (_req, reply) => {
    const checks: Array<{ check: string; ok: boolean; detail: string }> = [];
    checks.push(archiveCheck(archive));
    for (const s of sources) {
      const rule = rules.get(s.name) ?? { source: s.name, required: s.type !== 'push' && s.type !== 'remote_write', maxStalenessMs: READINESS_DEFAULT_MAX_STALENESS_MS };
      if (!rule.required) continue;
      const h = s.health();
      const fresh = h.stalenessMs !== null && h.stalenessMs <= rule.maxStalenessMs;
      checks.push({
        check: `source:${s.name}`,
        ok: fresh,
        detail: h.stalenessMs === null ? 'no successful poll yet' : `last success ${Math.round(h.stalenessMs / 1000)} s ago (max ${Math.round(rule.maxStalenessMs / 1000)} s)`,
      });
    }
    if (extraChecks) checks.push(...extraChecks());
    const bad = checks.filter((c) => !c.ok);
    if (bad.length === 0) return { ready: true, checks };
    return reply.status(503).send({ error: { code: 'TPD_NOT_READY', message: bad.map((c) => `${c.check}: ${c.detail}`).join('; ') }, checks });
  });
}
