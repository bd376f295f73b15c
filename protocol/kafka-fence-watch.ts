/**
 * Reader-side fencing of an active/standby pair's Kafka messages (docs/ha.md, "A paused
 * active"): every message the pair publishes carries `tpd-fence`, the fencing token of the
 * lease its publisher held. Tokens only grow, and a new active publishes under a larger one.
 * An old active that was paused (not dead) past its lease can still send what it had in hand
 * after the new one began: its message then lands after a message of a larger token on the
 * same partition (a stream's messages share one partition). A reader that keeps the highest
 * token it has read per partition and drops a message below it never takes such a message;
 * the new active published that batch itself.
 *
 * Tokens go down only when the pair's were reset (its Redis emptied while every member
 * restarted, a new cluster name, `ha` removed: fence 0). A lower token is therefore stale
 * only within `windowMessages` messages of its partition after the highest was raised (an
 * old active's late send lands right after the takeover); past that it is a reset: taken, and
 * the new highest from then on (reported through onReset), so that a reset pair's messages
 * are not refused for ever. Pure state; no I/O.
 */
import { headerText, type PartHeaders } from './kafka-parts.js';
import { TapedeckError } from './errors.js';

export const KAFKA_FENCE_HEADER = 'tpd-fence';

/** A tpd-fence header's token, or undefined (none, or not a token: not a pair's message). */
export function fenceOf(h: PartHeaders | undefined): number | undefined {
  const t = headerText(h, KAFKA_FENCE_HEADER);
  return t !== undefined && /^(0|[1-9][0-9]{0,14})$/.test(t) ? Number(t) : undefined;
}

interface High {
  token: number;
  /** Messages of the partition read since the token was raised to it. */
  since: number;
}

export class FenceWatch {
  private readonly highest = new Map<string, High>();
  private readonly windowMessages: number;
  private readonly onReset: ((partition: string, from: number, to: number) => void) | undefined;

  constructor(windowMessages: number, onReset?: (partition: string, from: number, to: number) => void) {
    this.windowMessages = windowMessages;
    this.onReset = onReset;
  }

  /**
   * The message read next on `partition` (any key naming a topic-partition): the highest
   * token read there before it when the message's is below it (stale: drop it), else
   * undefined (and its token, when it has one, is the highest from now).
   */
  stale(partition: string, h: PartHeaders | undefined): number | undefined {
    const high = this.highest.get(partition);
    if (high) high.since++;
    const token = fenceOf(h);
    if (token === undefined) return undefined;
    if (high === undefined || token > high.token) {
      this.highest.set(partition, { token, since: 0 });
      return undefined;
    }
    if (token === high.token) return undefined;
    if (high.since <= this.windowMessages) return high.token;
    this.onReset?.(partition, high.token, token);
    this.highest.set(partition, { token, since: 0 });
    return undefined;
  }

  /** Forgets a partition (revoked). */
  release(partition: string): void {
    this.highest.delete(partition);
  }
}

export function staleFenceError(token: number, highest: number): TapedeckError {
  return new TapedeckError('TPD_KAFKA_STALE_FENCE', `tpd-fence ${token} is below ${highest}, already read on this partition: a message of an old active of an active/standby pair, sent after the new one took over (the new active published this batch itself)`);
}
