/**
 * The one interface every source implements. A source turns something outside (an HTTP
 * API, a CSV matrix, pushed NDJSON) into batches and hands each to its sink; the recorder
 * behind the sink filters, stamps and appends them. Adding a source is one new file that
 * exports a SourceFactory, plus its line in registry.ts.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Update } from '../../protocol/value.js';

/** Where a source delivers batches. Resolves once the batch is in the archive writer. */
export interface BatchSink {
  /**
   * Records one batch. `tsUs` is the observation time (µs) when the source knows it;
   * otherwise the recorder stamps the wall clock. Resolves with the timestamp given to the
   * batch, or undefined when the record spec filtered out every update.
   */
  write(updates: Update[], tsUs?: number): Promise<number | undefined>;
  /**
   * The time (µs) of the archive's last batch, when the sink knows it: a source recording at
   * times of its own leaves out a batch that is not after it, where the writer would move the
   * batch to just after it (a sample at a time it was not).
   */
  lastTsUs?(): number;
}

export interface SourceContext {
  name: string;
  sink: BatchSink;
  log: Logger;
  /** record.poll_interval: the poll interval of sources that set none. */
  defaultPollIntervalMs: number;
}

export interface SourceHealth {
  name: string;
  type: string;
  /** `starting` until the first poll ends; `ok`; `failing` after a failed poll. */
  status: 'starting' | 'ok' | 'failing' | 'stopped';
  /** Epoch ms of the last successful poll (or accepted push). */
  lastSuccessMs: number | null;
  lastError: { atMs: number; message: string } | null;
  consecutiveFailures: number;
  /** Milliseconds since the last success (null before the first). */
  stalenessMs: number | null;
  polls: number;
  failures: number;
  /** Polls answered 304 Not Modified. */
  notModified: number;
  batches: number;
  updates: number;
}

export interface Source extends EventEmitter {
  readonly name: string;
  readonly type: string;
  /** Starts polling or accepting. */
  start(): void;
  /** Stops; resolves once whatever was already received has been handed to the sink. */
  stop(): Promise<void>;
  health(): SourceHealth;
}

/**
 * Events every source emits (tests and logs wait on them):
 * - `poll` `{ ok: true, updates, notModified }` or `{ ok: false, error }` after each attempt.
 */
export type PollEvent =
  | { ok: true; updates: number; notModified: boolean; durationMs?: number }
  | { ok: false; error: Error; durationMs?: number };

export interface SourceFactory {
  readonly type: string;
  /** JSON Schema of the source's config entry (besides `name` and `type`), with no unknown keys. */
  readonly schema: Record<string, unknown>;
  /** Checks of meaning the schema cannot say, on a schema-valid entry: one line per problem, naming the key. */
  check?(config: Record<string, unknown>): string[];
  create(config: Record<string, unknown>, ctx: SourceContext): Source;
}

/** Health bookkeeping shared by the sources. */
export class HealthTracker {
  private readonly h: SourceHealth;

  constructor(name: string, type: string) {
    this.h = {
      name, type, status: 'starting', lastSuccessMs: null, lastError: null, consecutiveFailures: 0,
      stalenessMs: null, polls: 0, failures: 0, notModified: 0, batches: 0, updates: 0,
    };
  }

  success(updates: number, notModified = false): void {
    this.h.polls++;
    this.h.status = 'ok';
    this.h.lastSuccessMs = Date.now();
    this.h.consecutiveFailures = 0;
    if (notModified) this.h.notModified++;
    if (updates > 0) {
      this.h.batches++;
      this.h.updates += updates;
    }
  }

  failure(err: Error): void {
    this.h.polls++;
    this.h.failures++;
    this.h.consecutiveFailures++;
    this.h.status = 'failing';
    this.h.lastError = { atMs: Date.now(), message: err.message };
  }

  stopped(): void {
    this.h.status = 'stopped';
  }

  get consecutiveFailures(): number {
    return this.h.consecutiveFailures;
  }

  snapshot(): SourceHealth {
    return { ...this.h, stalenessMs: this.h.lastSuccessMs === null ? null : Date.now() - this.h.lastSuccessMs };
  }
}
