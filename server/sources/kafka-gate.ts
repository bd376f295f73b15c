/**
 * What a Kafka source does with a message before decoding it (docs/kafka.md, "Messages in
 * parts" and "Fencing"): a stale message of an active/standby pair (its tpd-fence below the
 * highest read on its partition: protocol/kafka-fence-watch.ts) is refused; the parts of a
 * message too large for its topic (protocol/kafka-parts.ts) are held until the last one
 * comes and then taken as the one message they make. Each refusal is one of the source's
 * refusals (kafka-refusals.ts: counted, logged, offset committed). A partition's offset is
 * committed no further than its earliest held set, so a restart reads that set again.
 */
import type { KafkaMessage } from 'kafkajs';
import { FenceWatch, fenceOf, staleFenceError } from '../../protocol/kafka-fence-watch.js';
import { PartAssembler, type PartLimits } from '../../protocol/kafka-parts.js';
import type { TapedeckError } from '../../protocol/errors.js';
import type { Logger } from 'pino';

type Refuse = (topic: string, partition: number, offset: string, err: TapedeckError) => void;

export class KafkaGate {
  private readonly fences: FenceWatch;
  private readonly parts: PartAssembler;
  private readonly where = new Map<string, { topic: string; partition: number }>();

  constructor(limits: PartLimits & { staleFenceWindowMessages: number }, refuse: Refuse, log: Logger) {
    this.fences = new FenceWatch(limits.staleFenceWindowMessages, (k, from, to) => {
      const at = this.where.get(k);
      log.warn({ topic: at?.topic, partition: at?.partition, from, to }, `kafka: tpd-fence went down from ${from} to ${to} more than ${limits.staleFenceWindowMessages} messages after ${from} began: taken as a reset of the pair's tokens, ${to} is the highest from now`);
    });
    this.parts = new PartAssembler(limits, (r) => {
      const at = this.where.get(r.partition);
      if (at) for (const offset of r.offsets) refuse(at.topic, at.partition, offset, r.err);
    });
  }

  private key(topic: string, partition: number): string {
    const k = `${partition}\0${topic}`;
    if (!this.where.has(k)) this.where.set(k, { topic, partition });
    return k;
  }

  /** The message to decode (a whole one, or the one its parts make, at the last part's offset), or undefined (held, or refused). */
  admit(topic: string, partition: number, m: KafkaMessage): KafkaMessage | undefined {
    const k = this.key(topic, partition);
    const high = this.fences.stale(k, m.headers);
    if (high !== undefined) {
      this.parts.discard(k, m.offset, m.headers, staleFenceError(fenceOf(m.headers) as number, high));
      return undefined;
    }
    const whole = this.parts.take(k, m.offset, m.headers, m.value);
    if (!whole) return undefined;
    return whole.value === m.value ? m : { ...m, value: whole.value };
  }

  /** The offset to commit for `partition` once everything before `next` is durable: no further than a set still held. */
  commitOffset(topic: string, partition: number, next: string): string {
    const held = this.parts.heldFrom(this.key(topic, partition));
    return held !== undefined && BigInt(held) < BigInt(next) ? held : next;
  }

  /** A new assignment (a rebalance): each partition is read again from its committed offset, so what was held is forgotten. */
  reassigned(): void {
    for (const k of this.where.keys()) {
      this.parts.release(k);
      this.fences.release(k);
    }
  }
}
