/**
 * What the HTTP pollers share: a loop that GETs one URL every interval with undici (one
 * keep-alive agent per source, a timeout on the whole request, a cap on the body), retries
 * failures after an exponential backoff with jitter, and keeps the source's health. Each
 * source runs its own loop on its own timers, so a failing or slow upstream only delays
 * itself. Subclasses turn a response into a batch.
 */
import { EventEmitter } from 'node:events';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import { parseTs } from '../../protocol/time.js';
import type { Update } from '../../protocol/value.js';
import { writeIdentified } from '../sinks/identity.js';
import { DURATION_SCHEMA, durationMs, type Duration } from '../duration.js';
import { SERVER_LIMITS, SOURCE_DEFAULTS } from '../limits.js';
import { ResponseBytes } from './response-budget.js';
import { HealthTracker, type PollEvent, type Source, type SourceContext, type SourceHealth } from './source.js';

/** Config keys every poller accepts (JSON Schema properties). */
export const POLLER_PROPERTIES = {
  url: { type: 'string', pattern: '^(https?://|\\{simulator\\})' },
  interval: DURATION_SCHEMA,
  timeout: DURATION_SCHEMA,
  backoff_initial: DURATION_SCHEMA,
  backoff_max: DURATION_SCHEMA,
  headers: { type: 'object', additionalProperties: { type: 'string' } },
} as const;

export interface PollerConfig {
  url: string;
  interval?: Duration;
  timeout?: Duration;
  backoff_initial?: Duration;
  backoff_max?: Duration;
  headers?: Record<string, string>;
}

export interface PollResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A poll that failed in a way worth naming (HTTP status, oversized body, parse error). */
export class PollError extends Error {
  override readonly name = 'PollError';
}

export abstract class PollingSource extends EventEmitter implements Source {
  readonly name: string;
  abstract readonly type: string;
  protected readonly ctx: SourceContext;
  protected readonly log: Logger;
  protected readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly headers: Record<string, string>;
  private readonly agent: Agent;
  protected readonly tracker: HealthTracker;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;

  constructor(type: string, cfg: PollerConfig, ctx: SourceContext) {
    super();
    this.name = ctx.name;
    this.ctx = ctx;
    this.log = ctx.log;
    this.url = cfg.url;
    this.intervalMs = cfg.interval !== undefined ? durationMs(cfg.interval) : ctx.defaultPollIntervalMs;
    this.timeoutMs = cfg.timeout !== undefined ? durationMs(cfg.timeout) : SOURCE_DEFAULTS.timeoutMs;
    this.backoffInitialMs = cfg.backoff_initial !== undefined ? durationMs(cfg.backoff_initial) : SOURCE_DEFAULTS.backoffInitialMs;
    this.backoffMaxMs = cfg.backoff_max !== undefined ? durationMs(cfg.backoff_max) : SOURCE_DEFAULTS.backoffMaxMs;
    this.headers = { ...(cfg.headers ?? {}) };
    this.agent = new Agent({
      keepAliveTimeout: SOURCE_DEFAULTS.keepAliveMs,
      connections: SERVER_LIMITS.sourceConnectionsMax,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    this.tracker = new HealthTracker(ctx.name, type);
  }

  /** Turns a 2xx response into a batch; returns the number of updates handed to the sink. */
  protected abstract handle(res: PollResponse): Promise<number>;

  /**
   * Writes one polled batch: stamped on arrival, or, with the upstream's snapshot time,
   * stamped with it and identified by it, so active/standby recorders polling the same
   * upstream recognise the same batch (server/sinks/identity.ts).
   */
  protected async record(updates: Update[], snapshotUs: number | undefined): Promise<void> {
    if (snapshotUs === undefined) await this.ctx.sink.write(updates);
    else await writeIdentified(this.ctx.sink, updates, snapshotUs, { stream: this.name, seq: String(snapshotUs) });
  }

  /** Extra request headers for the next poll (e.g. If-None-Match). */
  protected conditionalHeaders(): Record<string, string> {
    return {};
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    await this.loop;
    this.tracker.stopped();
    await this.agent.close().catch(() => undefined);
  }

  health(): SourceHealth {
    return this.tracker.snapshot();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const startedMs = Date.now();
      let ok = false;
      try {
        const { updates, notModified } = await this.pollOnce();
        ok = true;
        this.tracker.success(updates, notModified);
        this.emit('poll', { ok: true, updates, notModified, durationMs: Date.now() - startedMs } satisfies PollEvent);
      } catch (err) {
        if (this.stopping) break;
        const error = err instanceof Error ? err : new Error(String(err));
        this.tracker.failure(error);
        this.log.warn({ err: error.message, consecutiveFailures: this.tracker.consecutiveFailures }, 'poll failed');
        this.emit('poll', { ok: false, error, durationMs: Date.now() - startedMs } satisfies PollEvent);
      }
      if (this.stopping) break;
      await this.sleep(ok ? Math.max(0, this.intervalMs - (Date.now() - startedMs)) : this.retryDelayMs());
    }
  }

  /** Exponential backoff with jitter: a random delay in [d/2, d], d doubling per failure. */
  private retryDelayMs(): number {
    const n = Math.min(this.tracker.consecutiveFailures, 30);
    const d = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (n - 1));
    return d / 2 + Math.random() * (d / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async pollOnce(): Promise<{ updates: number; notModified: boolean }> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = AbortSignal.any([this.abort.signal, timeout]);
    try {
      return await this.exchange(signal);
    } catch (err) {
      if (timeout.aborted && !this.abort.signal.aborted) throw new PollError(`no complete answer within ${this.timeoutMs} ms (timeout)`);
      throw err;
    }
  }

  private async exchange(signal: AbortSignal): Promise<{ updates: number; notModified: boolean }> {
    const res = await request(this.url, {
      method: 'GET',
      dispatcher: this.agent,
      headers: { ...this.headers, ...this.conditionalHeaders() },
      signal,
    });
    if (res.statusCode === 304) {
      await res.body.dump();
      return { updates: 0, notModified: true };
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump().catch(() => undefined);
      throw new PollError(`upstream answered HTTP ${res.statusCode}`);
    }
    const declared = Number(res.headers['content-length'] ?? 0);
    if (declared > SERVER_LIMITS.sourceResponseBytesMax) {
      res.body.destroy();
      throw new PollError(`response of ${declared} bytes exceeds sourceResponseBytesMax (${SERVER_LIMITS.sourceResponseBytesMax})`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const budget = new ResponseBytes();
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > SERVER_LIMITS.sourceResponseBytesMax) {
          res.body.destroy();
          throw new PollError(`response exceeds sourceResponseBytesMax (${SERVER_LIMITS.sourceResponseBytesMax} bytes)`);
        }
        if (!budget.take((chunk as Buffer).length)) {
          res.body.destroy();
          throw new PollError(`responses read at once by every poller exceed sourceResponseBytesInFlightMax (${SERVER_LIMITS.sourceResponseBytesInFlightMax} bytes); this one had ${size} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      // The response is in hand: from here on it is recorded even if a stop comes.
      const updates = await this.handle({ statusCode: res.statusCode, headers: res.headers, body: Buffer.concat(chunks, size) });
      return { updates, notModified: false };
    } finally {
      budget.release();
    }
  }
}

/**
 * The snapshot time (µs) a response carries in `header` (epoch s/ms/µs or RFC 3339), or
 * undefined when the header is not configured or absent; PollError when it is not a time.
 */
export function snapshotTime(res: PollResponse, header: string | null): number | undefined {
  if (!header) return undefined;
  const h = headerValue(res.headers, header);
  if (h === undefined || h.trim() === '') return undefined;
  try {
    return parseTs(h);
  } catch {
    throw new PollError(`header ${header}: ${JSON.stringify(h.slice(0, 60))} is not a time`);
  }
}

/** First value of a response header. */
export function headerValue(headers: PollResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
