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
  if (url.startsWith('/api/v1/ingest') || url === '/api/v1/write') return 'ingest';
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

interface FailureWindow {
  windowStartMs: number;
  n: number;
}

/**
 * Failures per key (client address) in fixed windows, for at most keysMax keys counting and
 * keysMax keys locked out. Past keysMax the oldest entry goes (a Map iterates in insertion
 * order), never the whole table: clearing it let anyone failing from enough fresh addresses
 * lift their own lockout. Locked-out keys are kept apart from the ones still counting, so
 * new addresses only ever evict other counts; the oldest lockout, the first to expire, goes
 * only when keysMax addresses are locked out at once.
 */
export class FailureCounter {
  private readonly counting = new Map<string, FailureWindow>();
  private readonly locked = new Map<string, FailureWindow>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly keysMax: number,
    private readonly clockMs: () => number = Date.now,
  ) {}

  add(key: string): void {
    const now = this.clockMs();
    const l = this.locked.get(key);
    if (l && this.current(l, now)) {
      l.n++;
      return;
    }
    if (l) this.locked.delete(key);
    let c = this.counting.get(key);
    if (c && this.current(c, now)) c.n++;
    else {
      // A new window goes to the back of the eviction order.
      this.counting.delete(key);
      c = { windowStartMs: now, n: 1 };
      remember(this.counting, key, c, this.keysMax);
    }
    if (c.n >= this.max) {
      this.counting.delete(key);
      remember(this.locked, key, c, this.keysMax);
    }
  }

  blocked(key: string): boolean {
    const l = this.locked.get(key);
    return l !== undefined && this.current(l, this.clockMs());
  }

  /** Keys counting and keys locked out (each at most keysMax). */
  get size(): { counting: number; locked: number } {
    return { counting: this.counting.size, locked: this.locked.size };
  }

  private current(w: FailureWindow, now: number): boolean {
    return now - w.windowStartMs < this.windowMs;
  }
}

function remember(map: Map<string, FailureWindow>, key: string, w: FailureWindow, keysMax: number): void {
  if (map.size >= keysMax) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, w);
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
