/**
 * The JSON answers built whole (/api/v1/state, /api/v1/diff, /api/v1/paths) are built a few at a time
 * (SERVER_LIMITS.jsonAnswersBuiltMax); the others wait their turn, up to
 * jsonAnswersWaitingMax of them, and past that a request is refused 503 TPD_BUSY with a
 * Retry-After. Each build holds a state of every matching path and its JSON text, and parts
 * of it go in one piece (the cursor's state, the text): a hundred as-of states of 50 000
 * paths asked at once held 1.5 GB of the server's memory, and /health waited 14 s behind
 * their pieces (a hundred lists of those paths: 5 s). A cached answer is not built and does
 * not wait.
 */
import type { FastifyReply } from 'fastify';
import { TapedeckError } from '../../protocol/errors.js';
import { SERVER_LIMITS } from '../limits.js';

export class AnswerGate {
  private building = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly builtMax: number = SERVER_LIMITS.jsonAnswersBuiltMax,
    private readonly waitingMax: number = SERVER_LIMITS.jsonAnswersWaitingMax,
  ) {}

  /** Answers being built and waiting to be (metrics, tests). */
  get counts(): { building: number; waiting: number } {
    return { building: this.building, waiting: this.waiting.length };
  }

  /**
   * Runs `build` once a place is free. Refuses with 503 TPD_BUSY when too many wait; a
   * request whose client left while it waited is not built (its answer would go nowhere).
   */
  async run<T>(what: string, reply: FastifyReply, build: () => Promise<T>): Promise<T> {
    if (this.building >= this.builtMax) {
      if (this.waiting.length >= this.waitingMax) {
        reply.header('retry-after', String(SERVER_LIMITS.jsonAnswersBusyRetryAfterS));
        throw new TapedeckError('TPD_BUSY', `${this.building} ${what} answers are being built and ${this.waiting.length} wait, as many as the server takes at once (jsonAnswersBuiltMax, jsonAnswersWaitingMax); retry later`);
      }
      // The place is handed over by the build that ends (building stays counted).
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.building++;
    }
    try {
      if (reply.raw.destroyed || reply.request.raw.socket?.destroyed === true) throw new TapedeckError('TPD_BAD_REQUEST', 'the client left before its answer was built');
      return await build();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.building--;
    }
  }
}
