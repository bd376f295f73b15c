/**
 * Bearer tokens with scopes. `read` covers queries and playback, `ingest` push ingest,
 * `admin` session administration and everything else (admin implies the other scopes).
 * A `read` token controls the sessions it created; other clients' sessions, and the list
 * of all sessions, need `admin`.
 * With no tokens configured the server runs open, which startServer only allows on a
 * loopback address. Public routes: /health, /ready, /openapi.json and the web player's
 * static files. WebSocket clients that cannot set headers (browsers) may pass the token
 * as `?access_token=`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TapedeckError } from '../../protocol/errors.js';
import { SERVER_LIMITS } from '../limits.js';

export type Scope = 'read' | 'ingest' | 'admin';

export interface TokenConfig {
  /** Shown in logs and used as the rate-limit key; never the secret itself. */
  name: string;
  token: string;
  scopes: Scope[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated token's name, or undefined when auth is off. */
    principal: string | undefined;
    /** The authenticated token's scopes, or undefined when auth is off. */
    scopes: readonly Scope[] | undefined;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; routes without one need `read` under /api, none elsewhere. */
    scope?: Scope | 'public';
  }
}

/** Scope of a route: explicit `config.scope`, else by URL. */
export function routeScope(method: string, url: string, explicit: Scope | 'public' | undefined): Scope | 'public' {
  if (explicit) return explicit;
  if (url === '/health' || url === '/ready' || url === '/openapi.json') return 'public';
  if (url.startsWith('/api/v1/ingest')) return 'ingest';
  if (method === 'GET' && url === '/api/v1/sessions') return 'admin';
  if (url.startsWith('/api/') || url === '/metrics' || url === '/stats') return 'read';
  return 'public';
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function registerAuth(app: FastifyInstance, tokens: readonly TokenConfig[]): void {
  app.decorateRequest('principal', undefined);
  app.decorateRequest('scopes', undefined);
  if (tokens.length === 0) return;
  const known = tokens.map((t) => ({ ...t, hash: digest(t.token) }));
  const find = (presented: string): (typeof known)[number] | undefined => {
    const h = digest(presented);
    let hit: (typeof known)[number] | undefined;
    for (const t of known) if (timingSafeEqual(h, t.hash)) hit = t;
    return hit;
  };
  const failures = new FailureCounter(SERVER_LIMITS.authFailuresPerMinuteMax, 60_000, SERVER_LIMITS.authFailureAddressesMax);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const url = req.routeOptions.url ?? req.url.split('?')[0] ?? '';
    const scope = routeScope(req.method, url, req.routeOptions.config?.scope);
    if (scope === 'public') return;
    if (failures.blocked(req.ip)) {
      throw new TapedeckError('TPD_RATE_LIMITED', `more than ${SERVER_LIMITS.authFailuresPerMinuteMax} failed authentications from this address in a minute`);
    }
    const header = req.headers.authorization;
    let presented: string | undefined;
    if (header?.startsWith('Bearer ')) presented = header.slice(7).trim();
    else if (req.headers.upgrade?.toLowerCase() === 'websocket') {
      presented = new URL(req.url, 'http://x').searchParams.get('access_token') ?? undefined;
    }
    if (!presented) {
      failures.add(req.ip);
      throw new TapedeckError('TPD_UNAUTHORIZED', 'this route needs a bearer token (Authorization: Bearer <token>)');
    }
    const t = find(presented);
    if (!t) {
      failures.add(req.ip);
      throw new TapedeckError('TPD_UNAUTHORIZED', 'unknown token');
    }
    if (!t.scopes.includes(scope) && !t.scopes.includes('admin')) {
      throw new TapedeckError('TPD_FORBIDDEN', `token ${t.name} lacks the ${scope} scope`);
    }
    req.principal = t.name;
    req.scopes = t.scopes;
  });
}

/**
 * Whether the request may administer what `owner` created: always when auth is off (a
 * loopback-only server trusts its clients), else the same token or an admin token.
 */
export function mayAdminister(req: FastifyRequest, owner: string): boolean {
  return req.scopes === undefined || req.scopes.includes('admin') || req.principal === owner;
}

/** Failures per key in fixed windows, for a bounded number of keys. */
class FailureCounter {
  private readonly counts = new Map<string, { windowStartMs: number; n: number }>();

  constructor(private readonly max: number, private readonly windowMs: number, private readonly keysMax: number) {}

  add(key: string): void {
    const now = Date.now();
    const c = this.counts.get(key);
    if (c && now - c.windowStartMs < this.windowMs) {
      c.n++;
      return;
    }
    if (!c && this.counts.size >= this.keysMax) this.counts.clear();
    this.counts.set(key, { windowStartMs: now, n: 1 });
  }

  blocked(key: string): boolean {
    const c = this.counts.get(key);
    return c !== undefined && c.n >= this.max && Date.now() - c.windowStartMs < this.windowMs;
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
