/**
 * What stops a playback session's storage reads (a seek, a step back, a state's walk back to
 * its image, a wait for a file fetched from cold storage): the one who waits for the read
 * leaving, as an HTTP request's reads stop when its client leaves (server/client-gone.ts).
 *
 * The session's cursors carry `wait` (storage/archive.ts FetchWait), whose `signal` is the
 * one the read under way carries: the loop's reads (play, tail, a state frame) the attached
 * stream's, aborted when it leaves; a control change's its asker's (the stream that sent it,
 * a PATCH's client) or the session's own; putting the cursor back after a stopped read the
 * session's own. Every signal aborts when the session ends (closed, deleted, collected, the
 * server closing); a creation's when its POST's client leaves. Only the loop reads, one read
 * at a time, so the signal is the loop's state. A stopped read throws its signal's reason;
 * the fetch goes on for other readers. Each stop is counted once, in
 * tapedeck_requests_canceled_total{at="session"}.
 */
import { TapedeckError } from '../../protocol/errors.js';
import type { FetchWait } from '../../storage/index.js';
import { CANCELED } from '../client-gone.js';

export class ReadStops {
  /** The session's cursors' FetchWait: tells `told`, and carries the signal of the read under way. */
  readonly wait: FetchWait;
  private readonly ended = new AbortController();
  /** The attached stream's: aborted when it leaves (or the session ends); none before the first. */
  private client: AbortController | undefined;
  /** The signal of the read under way (under()); the session's own outside any. */
  private now: AbortSignal | undefined;
  /** Reasons the session's reads were stopped with: an error that is one is a stop, not a failure. */
  private readonly reasons = new WeakSet<object>();
  /** Reasons already counted: a stop is counted once, whichever read saw it. */
  private readonly counted = new WeakSet<object>();

  constructor(told: FetchWait) {
    const wait = (e: Parameters<FetchWait>[0]): void => told(e);
    this.wait = Object.defineProperty(wait, 'signal', { get: () => this.now ?? this.ended.signal, enumerable: true });
  }

  /** The signal of the loop's reads: the attached stream's, else the session's own. */
  get loopSignal(): AbortSignal {
    return this.client !== undefined && !this.client.signal.aborted ? this.client.signal : this.ended.signal;
  }

  /** A stream attached: the loop's reads stop when it leaves (a stream replacing another keeps the signal). */
  attached(): void {
    if (this.client === undefined || this.client.signal.aborted) this.client = new AbortController();
  }

  /** The attached stream left: the loop's read under way stops. */
  left(): void {
    this.abort(this.client, new TapedeckError('TPD_CANCELED', 'the client left the session\'s stream'));
  }

  /** The session ended (`reason`: what a change still waiting is told): every read stops. */
  end(reason: Error): void {
    this.abort(this.ended, reason);
    this.abort(this.client, reason);
  }

  /** Until the returned function is called, the session ends when `asker` aborts (its creation, for a POST's client). */
  endWith(asker: AbortSignal | undefined): () => void {
    if (asker === undefined) return () => undefined;
    const end = (): void => this.end(asker.reason as Error);
    if (asker.aborted) end();
    else asker.addEventListener('abort', end, { once: true });
    return () => asker.removeEventListener('abort', end);
  }

  /** Runs `read` (the loop's: nothing else reads), the session's reads carrying `signal`. */
  async under<T>(signal: AbortSignal, read: () => Promise<T>): Promise<T> {
    const was = this.now;
    this.now = signal;
    try {
      return await read();
    } finally {
      this.now = was;
    }
  }

  /** under() a signal aborted when `asker` aborts (the stream or request that asked a change) or the session ends. */
  async askedBy<T>(asker: AbortSignal | undefined, read: () => Promise<T>): Promise<T> {
    if (asker === undefined) return this.under(this.ended.signal, read);
    const linked = new AbortController();
    const stop = (): void => this.abort(linked, (asker.aborted ? asker.reason : this.ended.signal.reason) as Error);
    if (asker.aborted || this.ended.signal.aborted) stop();
    asker.addEventListener('abort', stop, { once: true });
    this.ended.signal.addEventListener('abort', stop, { once: true });
    try {
      return await this.under(linked.signal, read);
    } finally {
      asker.removeEventListener('abort', stop);
      this.ended.signal.removeEventListener('abort', stop);
    }
  }

  /** Runs `read` (a cursor put back after a stopped read) with the session's own signal: only its end stops it. */
  settle<T>(read: () => Promise<T>): Promise<T> {
    return this.under(this.ended.signal, read);
  }

  /** True when `err` is a stop (a signal's reason), not a failure; counted once a stop. */
  stopped(err: unknown): boolean {
    if (typeof err !== 'object' || err === null || !this.reasons.has(err)) return false;
    if (!this.counted.has(err)) {
      this.counted.add(err);
      CANCELED.session++;
    }
    return true;
  }

  private abort(c: AbortController | undefined, reason: Error): void {
    if (c === undefined || c.signal.aborted) return;
    this.reasons.add(reason);
    c.abort(reason);
  }
}
