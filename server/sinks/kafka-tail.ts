/**
 * The Kafka sink's tail follower (docs/ha.md, "No loss, no duplicate"): a consumer of the
 * sink topic that tells the sink the last seq per stream the topic holds, counting only
 * messages this recorder pair wrote (tpd-mac, server/sinks/sink-auth.ts). Before a promotion
 * the sink waits, through it, until the topic has been read to its end.
 *
 * The first consumer starts `tailReadMessages` before the end; a rebuilt one (after a crash,
 * or when a promotion finds it behind) continues exactly where the last one stopped. Each
 * gets a new group: a consumer that rejoins an old group after a broker restart can wait for
 * its own stale membership to time out, a new group has none. Positions are set with seek()
 * (admin.setOffsets runs a throwaway consumer and costs seconds).
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { FenceWatch } from '../../protocol/kafka-fence-watch.js';
import { completesBatch, headerText as header } from '../../protocol/kafka-parts.js';
import { isSeq } from './identity.js';
import type { SignedIdentity, SinkAuth } from './sink-auth.js';

/** The follower's limits (KAFKA_SINK_DEFAULTS, server/sinks/kafka.ts, documents them). */
export interface KafkaTailLimits {
  tailReadMessages: number;
  catchUpMaxMs: number;
  unverifiedMax: number;
  disconnectMaxMs: number;
  retryBackoffMs: number;
  staleFenceWindowMessages: number;
}

export interface KafkaTailOptions {
  kafka: Kafka;
  topic: string;
  recorderId: string;
  log: Logger;
  auth: SinkAuth;
  limits: KafkaTailLimits;
  /** The topic holds `seq` of `stream` (a message of the pair). */
  onIdentity(stream: string, seq: string): void;
}

/** Rejects when `p` has not settled in `ms` (a client stuck reconnecting must not hold a shutdown). */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`not done in ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class KafkaTail {
  private readonly o: KafkaTailOptions;
  private consumer: Consumer | undefined;
  /** Next offset to read, per partition. */
  private readonly next = new Map<number, bigint>();
  /** Which consumer is current; callbacks of replaced ones are ignored. */
  private epoch = 0;
  private stopped = false;
  /** Identities read before a key was known (verified when one is). */
  private unverified: Array<{ id: SignedIdentity; mac: string; partition: number; complete: boolean }> = [];
  /** The highest tpd-fence of the pair's messages read per partition (docs/ha.md, "A paused active"). */
  private readonly fences: FenceWatch;
  /** The pair's messages under a fence below one already read on their partition (an old active's, late): not counted as on the topic. */
  staleMessages = 0;
  /** Identities read before the key was known and forgotten past unverifiedMax. */
  unverifiedDropped = 0;
  /** Epoch ms when a message was last read (null: never). */
  readAtMs: number | null = null;
  /** Messages with an identity this pair did not write (no tag, or one that does not verify), passed over. */
  foreignMessages = 0;

  constructor(o: KafkaTailOptions) {
    this.o = o;
    this.fences = new FenceWatch(o.limits.staleFenceWindowMessages, (partition, from, to) => o.log.warn({ partition, from, to }, `kafka sink: tpd-fence went down from ${from} to ${to} long after ${from} began: taken as a reset of the pair's tokens`));
  }

  async start(): Promise<void> {
    const epoch = ++this.epoch;
    const { kafka, topic } = this.o;
    if (this.next.size === 0) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const exists = (await admin.listTopics()).includes(topic);
        if (!exists) await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }).catch(() => undefined);
        for (const p of await admin.fetchTopicOffsets(topic)) {
          const high = BigInt(p.high);
          const low = BigInt(p.low);
          const back = high - BigInt(this.o.limits.tailReadMessages);
          this.next.set(p.partition, back > low ? back : low);
        }
      } finally {
        await admin.disconnect();
      }
    }
    const groupId = `tapedeck-sink-tail-${this.o.recorderId}-${randomUUID()}`;
    const tail = kafka.consumer({
      groupId, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 2_000,
      retry: { initialRetryTime: 100, retries: 5, restartOnFailure: async () => false },
    });
    this.consumer = tail;
    tail.on(tail.events.CRASH, ({ payload }) => {
      if (this.stopped || epoch !== this.epoch) return;
      this.o.log.warn({ err: payload.error }, 'kafka sink: the tail follower stopped; starting a new one where it was');
      this.rebuildSoon(epoch);
    });
    await tail.connect();
    await tail.subscribe({ topic, fromBeginning: true });
    await tail.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (epoch !== this.epoch) return;
        for (const m of batch.messages) {
          const next = BigInt(m.offset) + 1n;
          // A new follower may read again what an old one read; positions only go forward.
          if (next <= (this.next.get(batch.partition) ?? 0n)) continue;
          this.read(batch.partition, m.headers);
          this.next.set(batch.partition, next);
        }
        if (batch.messages.length > 0) this.readAtMs = Date.now();
      },
    });
    try {
      for (const [partition, offset] of this.next) tail.seek({ topic, partition, offset: offset.toString() });
    } catch (err) {
      // The consumer crashed while joining (a busy broker: no group coordinator yet) and
      // kafkajs dropped its group: a new follower takes over where this one was, as after
      // any crash, rather than failing the recorder's start.
      this.o.log.warn({ err }, 'kafka sink: the tail follower stopped while starting; starting a new one');
      this.rebuildSoon(epoch);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.epoch++;
    await withTimeout(this.consumer?.disconnect() ?? Promise.resolve(), this.o.limits.disconnectMaxMs).catch(() => undefined);
  }

  /** Verifies what was read before the pair's key was known (call when a key is adopted). */
  keyAdopted(): void {
    const was = this.unverified;
    this.unverified = [];
    for (const x of was) this.accept(x.id, x.mac, x.partition, x.complete);
  }

  /** Replaces the follower (the old one is disconnected in the background). */
  async rebuild(): Promise<void> {
    const old = this.consumer;
    this.consumer = undefined;
    if (old) void withTimeout(old.disconnect(), this.o.limits.disconnectMaxMs).catch(() => undefined);
    await this.start();
  }

  /** Waits (bounded) until the follower has read the topic up to its current end; false when it did not. */
  async catchUp(): Promise<boolean> {
    const deadline = Date.now() + this.o.limits.catchUpMaxMs;
    const admin = this.o.kafka.admin();
    try {
      await admin.connect();
      const offs = await admin.fetchTopicOffsets(this.o.topic);
      for (;;) {
        const behind = offs.filter((p) => (this.next.get(p.partition) ?? 0n) < BigInt(p.high));
        if (behind.length === 0) return true;
        if (Date.now() > deadline) {
          this.o.log.warn({ behind: behind.map((p) => p.partition) }, 'kafka sink: the tail of the topic was not read in time');
          return false;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    } catch (err) {
      this.o.log.warn({ err }, 'kafka sink: cannot read the end of the topic');
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * Before a promotion publishes, the follower must have read the topic to its end: otherwise
   * the buffered batches the old active did publish would go out again. A follower that does
   * not get there in `catchUpMaxMs` (e.g. still reconnecting after a broker restart) is
   * replaced and the wait goes on (the sink's buffer does not age during a promotion), up to
   * `maxWaitMs`; past that the promotion publishes anyway and says loudly that duplicates are
   * possible (losing batches would be worse). Resolves true for such an uncertain promotion.
   */
  async waitForEnd(maxWaitMs: number, stopped: () => boolean): Promise<boolean> {
    const deadline = Date.now() + maxWaitMs;
    while (!stopped()) {
      if (await this.catchUp()) {
        // Without the pair's key (Redis unreachable since start) what was read cannot be told
        // from a foreign producer's: none of it counts, so batches may go out twice, never lost.
        if (this.o.auth.ready || this.unverifiedCount === 0) return false;
        this.o.log.error({ unverified: this.unverifiedCount }, "kafka sink: the pair's key is not known (Redis unreachable); publishing without trusting the topic, batches near the failover may be duplicated");
        return true;
      }
      if (Date.now() > deadline) {
        this.o.log.error({ waitedMs: maxWaitMs }, 'kafka sink: the end of the topic could not be read in time; publishing anyway, batches near the failover may be duplicated');
        return true;
      }
      this.o.log.warn('kafka sink: the tail follower is behind; following the topic with a new consumer');
      await this.rebuild().catch((err: unknown) => this.o.log.warn({ err }, 'kafka sink: cannot follow the topic yet'));
    }
    return false;
  }

  /** Messages read before the pair's key was known and not verified yet. */
  get unverifiedCount(): number {
    return this.unverified.length;
  }

  private read(partition: number, h: IHeaders | undefined): void {
    const stream = header(h, 'tpd-stream');
    const seq = header(h, 'tpd-seq');
    // A message without an identity (another producer's) is no batch: nothing to count.
    if (stream === undefined || seq === undefined) return;
    // A batch in parts (protocol/kafka-parts.ts) is on the topic once its last part is: an
    // active that stopped after part 1 has not published it, and the next one must.
    const complete = completesBatch(h);
    const id = { stream, seq, fence: header(h, 'tpd-fence') ?? '', recorder: header(h, 'tpd-recorder') ?? '' };
    const mac = header(h, 'tpd-mac') ?? '';
    // Untagged, it is not the pair's; tagged, it may be, once the key is known.
    if (this.o.auth.ready || mac === '') return this.accept(id, mac, partition, complete);
    this.unverified.push({ id, mac, partition, complete });
    if (this.unverified.length > this.o.limits.unverifiedMax) {
      this.unverified.shift();
      const n = ++this.unverifiedDropped;
      if ((n & (n - 1)) === 0) this.o.log.error({ unverifiedMax: this.o.limits.unverifiedMax, dropped: n }, "kafka sink: more messages read before the pair's key is known than are kept; the oldest are forgotten (a promotion may publish their batches again: duplicates, never loss)");
    }
  }

  private accept(id: SignedIdentity, mac: string, partition: number, complete: boolean): void {
    if (isSeq(id.seq) && this.o.auth.verify(id, mac)) {
      // Readers drop a message under a fence below one they read before it on its partition
      // (protocol/kafka-fence-watch.ts): such a batch is not on the topic for them, so it is
      // not for the pair either, and the active publishes it.
      const high = this.fences.stale(String(partition), { 'tpd-fence': id.fence });
      if (high !== undefined) {
        const n = ++this.staleMessages;
        if ((n & (n - 1)) === 0) this.o.log.warn({ stream: id.stream.slice(0, 200), seq: id.seq, fence: id.fence, highest: high, stale: n }, "kafka sink: a message of an old active (its fence below one already on the topic) is not counted as published");
        return;
      }
      if (complete) this.o.onIdentity(id.stream, id.seq);
      return;
    }
    const n = ++this.foreignMessages;
    // The 1st, 2nd, 4th, 8th...: a foreign producer on the topic is seen without flooding the log.
    if ((n & (n - 1)) === 0) this.o.log.warn({ stream: id.stream.slice(0, 200), seq: id.seq.slice(0, 40), recorder: id.recorder.slice(0, 200), foreign: n }, 'kafka sink: a message on the sink topic that this recorder pair did not write (its tpd-mac does not verify) is passed over');
  }

  private rebuildSoon(epoch: number, delayMs: number = this.o.limits.retryBackoffMs): void {
    setTimeout(() => {
      if (this.stopped || epoch !== this.epoch) return;
      void this.rebuild().catch((err: unknown) => {
        this.o.log.warn({ err }, 'kafka sink: cannot follow the topic yet; trying again');
        this.rebuildSoon(this.epoch, Math.min(5_000, delayMs * 2));
      });
    }, delayMs).unref();
  }
}
