/**
 * The JSON answers built whole (/api/v1/state, /api/v1/diff, /api/v1/paths) are built a few at a time
 * (SERVER_LIMITS.jsonAnswersBuiltMax); the others wait their turn, up to
 * jsonAnswersWaitingMax of them, and past that a request is refused 503 TPD_BUSY with a
 * Retry-After. Each build holds a state of every matching path and its JSON text, and parts
 * of it go in one piece (the cursor's state, the text): a hundred as-of states of 50 000
 * paths asked at once held 1.5 GB of the server's memory, and /health waited 14 s behind
 * their pieces (a hundred lists of those paths: 5 s). A cached answer is not built and does
 * not wait. A request whose client leaves holds neither a place nor a place in the queue
 * past the build's next slice.
 */
import type { FastifyReply } from 'fastify';
import { TapedeckError } from '../../protocol/errors.js';
import { SERVER_LIMITS } from '../limits.js';
import { CANCELED, clientGone, stopIfGone, stoppedByGone } from '../client-gone.js';

interface Waiter {
  /** Hands the place over (building stays counted). */
  go(): void;
  /** The client left while waiting: out of the queue, never built. */
  leave(reason: unknown): void;
}

export class AnswerGate {
  private building = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly builtMax: number = SERVER_LIMITS.jsonAnswersBuiltMax,
    private readonly waitingMax: number = SERVER_LIMITS.jsonAnswersWaitingMax,
  ) {}

  /** Answers being built and waiting to be (metrics, tests). */
  get counts(): { building: number; waiting: number } {
    return { building: this.building, waiting: this.waiting.length };
  }

  /**
   * Runs `build` once a place is free. Refuses with 503 TPD_BUSY when too many wait. A
   * request whose client leaves while it waits leaves the queue at once and is never built;
   * one that leaves while built stops at the build's next slice (`build` gets the request's
   * client-gone signal, server/client-gone.ts, and checks it where it yields) and gives its place
   * to the next: 499 TPD_CANCELED, which nobody reads.
   */
  async run<T>(what: string, reply: FastifyReply, build: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = clientGone(reply);
    if (signal.aborted) {
      CANCELED.waiting++;
      throw signal.reason;
    }
    if (this.building >= this.builtMax) {
      if (this.waiting.length >= this.waitingMax) {
        reply.header('retry-after', String(SERVER_LIMITS.jsonAnswersBusyRetryAfterS));
        throw new TapedeckError('TPD_BUSY', `${this.building} ${what} answers are being built and ${this.waiting.length} wait, as many as the server takes at once (jsonAnswersBuiltMax, jsonAnswersWaitingMax); retry later`);
      }
      // The place is handed over by the build that ends (building stays counted).
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          go: () => {
            signal.removeEventListener('abort', gone);
            resolve();
          },
          leave: reject,
        };
        const gone = (): void => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          CANCELED.waiting++;
          waiter.leave(signal.reason);
        };
        this.waiting.push(waiter);
        signal.addEventListener('abort', gone, { once: true });
      });
    } else {
      this.building++;
    }
    try {
      stopIfGone(signal);
      return await build(signal);
    } catch (err) {
      // A read of the archive that stopped for the client leaving (storage throws the signal's reason): counted too.
      stoppedByGone(signal, err);
      throw err;
    } finally {
      const next = this.waiting.shift();
      if (next) next.go();
      else this.building--;
    }
  }
}
