/**
 * The Kafka sink (docs/kafka.md): publishes every recorded batch live to a topic, with an
 * idempotent kafkajs producer, in the order recorded. One message per batch (key: the
 * batch's stream) or one per update (key: the path); msgpack or JSON values; the message
 * timestamp is the batch time; headers carry the batch identity (tpd-stream, tpd-seq), the
 * fencing token (tpd-fence) and the recorder id (tpd-recorder).
 *
 * With active/standby (server/ha/) only the active publishes. Every recorder keeps the
 * batches of the last `bufferWindowMs` (at most `bufferMaxBatches`) and follows the tail of
 * the topic itself (kafka-tail.ts), so that on promotion it knows the last batch of each
 * stream that was published, from the topic and not from a clock, and publishes exactly the
 * buffered batches after it. Only messages the pair wrote count (tpd-mac, sink-auth.ts).
 */
import { Kafka, logLevel, type Message, type Producer } from 'kafkajs';
// kafkajs 2.2.4 wakes every idle connection ~1 000 times a second: patched on import (see the file).
import '../cluster/kafka-request-queue.js';
import { MsgpackWriter } from '../../protocol/value-msgpack.js';
import type { RecordedEvent, Recorder } from '../recorder.js';
import { compareSeq } from './identity.js';
import { largestValueBytes, messagesBytes, nextPartBytes, requestEnd, sendRefusal, sinkMessages, type SendRefusal } from './kafka-messages.js';
import { KafkaTail, withTimeout } from './kafka-tail.js';
import { KAFKA_SINK_DEFAULTS, type KafkaSinkOptions, type SinkStatus } from './kafka-sink-options.js';
import { SinkAuth } from './sink-auth.js';
import { KAFKA_SOURCE_LIMITS } from '../sources/kafka.js';

export { KAFKA_SINK_DEFAULTS, type KafkaSinkOptions, type SinkStatus } from './kafka-sink-options.js';

interface Entry {
  e: RecordedEvent;
  atMs: number;
  /** Its messages larger than this go as parts (the topic refused them whole); undefined: whole. */
  partBytes?: number;
  /** Its messages go without a timestamp (the broker's clock): the topic refused the batch time. */
  brokerTime?: boolean;
}

export class KafkaSink {
  private readonly o: KafkaSinkOptions;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly mp = new MsgpackWriter();
  private readonly tail: KafkaTail | undefined;
  /** The pair's key (active/standby): signs what this recorder publishes, verifies what the follower reads. */
  readonly auth = new SinkAuth();
  private readonly buffer: Entry[] = [];
  private queue: Entry[] = [];
  private active = false;
  private fence = 0;
  private pumping: Promise<void> | undefined;
  /** The batches of the send in flight. */
  private sending: Entry[] | undefined;
  private stopped = false;
  /** Sends left to make one batch at a time (after the broker refused a larger one as too large). */
  private singlesLeft = 0;
  /** How many messages of a batch sent in several requests (key: path, parts) the topic already holds, under which fence. */
  private partSent: { entry: Entry; count: number; fence: number } | undefined;
  /**
   * Asked right before each send (active/standby: the coordinator's lease surely holds). An
   * active paused past its lease (SIGSTOP) sends nothing when it wakes until a renewal
   * answers: it either holds the lease again or is standby by then.
   */
  mayPublish: () => boolean = () => true;
  private leaseWaiting = false;
  /** Sends failed in a row (retried). */
  private failStreak = 0;
  /** Last seq per stream seen on the topic (tail follower) or published by us. */
  private readonly lastOnTopic = new Map<string, string>();
  private promoting: Promise<void> | undefined;
  readonly stats = { published: 0, dropped: 0, sendErrors: 0, promotions: 0, uncertainPromotions: 0, bufferOverflows: 0, partedBatches: 0, brokerTimed: 0, skippedOnTopic: 0 };
  lastPublished: { stream: string; seq: string; ts: number } | null = null;
  /** The recorder's event: whatever goes wrong here is the sink's, never thrown into the recording of the batch. */
  private readonly onRecorded = (e: RecordedEvent): void => {
    try {
      this.add(e);
    } catch (err) {
      this.o.log.error({ err, stream: e.id.stream, seq: e.id.seq }, 'kafka sink: a recorded batch could not be queued');
    }
  };
  private recorder: Recorder | undefined;

  constructor(o: KafkaSinkOptions) {
    this.o = o;
    this.kafka = new Kafka({
      clientId: o.clientId,
      brokers: o.brokers,
      logLevel: logLevel.WARN,
      logCreator: () => ({ level, log }) => {
        const { message, ...rest } = log;
        if (level === logLevel.ERROR || level === logLevel.WARN) o.log.warn({ kafka: rest }, message);
      },
      retry: { initialRetryTime: 100, retries: 5 },
    });
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    if (o.followTail) {
      this.tail = new KafkaTail({
        kafka: this.kafka, topic: o.topic, recorderId: o.recorderId, log: o.log, auth: this.auth, limits: { ...KAFKA_SINK_DEFAULTS, staleFenceWindowMessages: KAFKA_SOURCE_LIMITS.staleFenceWindowMessages },
        onIdentity: (stream, seq) => this.noteOnTopic(stream, seq),
      });
    }
  }

  /** Adopts the pair's key (from Redis, server/ha/coordinator.ts): new messages are signed with it. */
  adoptKey(hex: string): void {
    if (this.auth.addKey(hex)) this.tail?.keyAdopted();
  }

  async start(recorder: Recorder): Promise<void> {
    await this.producer.connect();
    await this.tail?.start();
    this.recorder = recorder;
    recorder.on('recorded', this.onRecorded);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.recorder?.off('recorded', this.onRecorded);
    await this.promoting?.catch(() => undefined);
    await this.pumping;
    await this.tail?.stop();
    await withTimeout(this.producer.disconnect(), KAFKA_SINK_DEFAULTS.disconnectMaxMs).catch(() => undefined);
  }

  status(): SinkStatus {
    return {
      publishing: this.active, queueDepth: this.queue.length, bufferDepth: this.buffer.length,
      published: this.stats.published, dropped: this.stats.dropped, sendErrors: this.stats.sendErrors,
      uncertainPromotions: this.stats.uncertainPromotions, bufferOverflows: this.stats.bufferOverflows, lastPublished: this.lastPublished,
      tailReadAtMs: this.tail?.readAtMs ?? null, foreignMessages: this.tail?.foreignMessages ?? 0,
    };
  }

  /** Starts publishing: first the buffered batches the topic does not hold yet, then live ones. */
  setActive(fence: number): Promise<void> {
    this.fence = fence;
    if (this.active || this.promoting) return this.promoting ?? Promise.resolve();
    this.promoting = (async () => {
      if (this.tail && (await this.tail.waitForEnd(this.o.promotionMaxWaitMs, () => this.stopped))) this.stats.uncertainPromotions++;
      if (this.stopped) return;
      // Synchronously from here: the queue is what the topic lacks, then live batches follow.
      const queue: Entry[] = [];
      for (const x of this.buffer) if (!this.onTopic(x.e)) queue.push(x);
      this.queue = queue;
      this.active = true;
      this.stats.promotions++;
      this.o.log.warn({ fence, replayed: queue.length, buffered: this.buffer.length }, 'kafka sink: publishing');
      this.pump();
    })().finally(() => {
      this.promoting = undefined;
    });
    return this.promoting;
  }

  /** Stops publishing (standby): what was queued stays in the buffer for a later promotion. */
  setStandby(): void {
    if (!this.active) return;
    this.active = false;
    this.queue = [];
    this.o.log.warn('kafka sink: standby, not publishing');
  }

  /** Stops publishing and waits for a send in flight to end. */
  async quiesce(): Promise<void> {
    this.setStandby();
    await this.pumping;
  }

  private add(e: RecordedEvent): void {
    const now = Date.now();
    const x = { e, atMs: now };
    const b = this.buffer;
    b.push(x);
    let drop = 0;
    // A batch leaves the buffer once it is older than the window and the topic is known to
    // hold it: batches the active could not publish (a broker outage) stay however old, up to
    // bufferMaxBatches. While a promotion reads the topic's end nothing ages.
    const windowMs = this.promoting ? Infinity : this.o.bufferWindowMs;
    while (drop < b.length) {
      const head = b[drop] as Entry;
      const confirmed = this.onTopic(head.e);
      if (now - head.atMs > windowMs && confirmed) {
        drop++;
      } else if (b.length - drop > this.o.bufferMaxBatches) {
        drop++;
        if (!confirmed && this.stats.bufferOverflows++ % 1000 === 0) {
          this.o.log.error({ bufferMaxBatches: this.o.bufferMaxBatches, overflows: this.stats.bufferOverflows }, 'kafka sink: standby buffer full; batches the topic may lack were dropped (a promotion now could lose them)');
        }
      } else break;
    }
    if (drop > 0) b.splice(0, drop);
    if (!this.active) return;
    // A batch the topic already holds (this recorder lagged behind the old active, or recorded
    // again what it had: a Kafka source re-reading after a rebalance) is not published again;
    // counted and logged, since a stream whose seq went back (a source topic recreated, an
    // upstream's snapshot clock set back) is held back this way until it passes its old seq.
    if (this.onTopic(e)) {
      const n = ++this.stats.skippedOnTopic;
      if ((n & (n - 1)) === 0) this.o.log.warn({ stream: e.id.stream, seq: e.id.seq, lastOnTopic: this.lastOnTopic.get(e.id.stream), skipped: n }, 'kafka sink: a batch whose seq the topic already holds for its stream is not published again');
      return;
    }
    this.queue.push(x);
    if (this.queue.length > this.o.queueMaxBatches) {
      const n = this.queue.length - this.o.queueMaxBatches;
      // The batches of the send in flight (at the queue's head) are not dropped: the broker
      // may hold them already, and the pump removes them once it knows.
      const sending = this.sending !== undefined && this.queue[0] === this.sending[0] ? this.sending.length : 0;
      this.queue.splice(sending, n);
      this.stats.dropped += n;
      this.o.log.error({ dropped: n, queueMaxBatches: this.o.queueMaxBatches }, 'kafka sink: queue full, oldest batches dropped (not published)');
    }
    this.pump();
  }

  /** The topic holds this batch (its stream's last seq on the topic is at or past it). */
  private onTopic(e: RecordedEvent): boolean {
    const last = this.lastOnTopic.get(e.id.stream);
    return last !== undefined && compareSeq(e.id.seq, last) <= 0;
  }

  /** The topic holds `seq` of `stream` (and so everything before it). */
  private noteOnTopic(stream: string, seq: string): void {
    const prev = this.lastOnTopic.get(stream);
    if (prev === undefined || compareSeq(seq, prev) > 0) this.lastOnTopic.set(stream, seq);
  }

  private messagesOf(x: Entry): Message[] {
    const { e } = x;
    return sinkMessages(e, { format: this.o.format, key: this.o.key, fence: this.fence, recorderId: this.o.recorderId, auth: this.auth, mp: this.mp, partBytes: x.partBytes, brokerTime: x.brokerTime });
  }

  /**
   * The next send: batches from the queue's head, at most sendBatchesMax and sendBytesMax
   * bytes of messages (at least one batch); one alone while `singlesLeft` says so.
   */
  private nextSend(): { take: Entry[]; messages: Message[] } {
    const take: Entry[] = [];
    const messages: Message[] = [];
    let bytes = 0;
    for (const x of this.queue) {
      if (take.length >= KAFKA_SINK_DEFAULTS.sendBatchesMax || (take.length > 0 && this.singlesLeft > 0)) break;
      let ms: Message[];
      try {
        ms = this.messagesOf(x);
      } catch (err) {
        // Before it, what was taken goes; it comes to the queue's head next.
        if (take.length > 0) break;
        this.unencodable(x, err);
        return { take, messages };
      }
      const b = messagesBytes(ms);
      if (take.length > 0 && bytes + b > KAFKA_SINK_DEFAULTS.sendBytesMax) break;
      take.push(x);
      for (const m of ms) messages.push(m);
      bytes += b;
    }
    return { take, messages };
  }

  /**
   * A batch at the queue's head no message can be made of (the encoder refused a value: a
   * bug, as every recorded value encodes) is dropped like a batch the broker refuses, counted
   * and logged, never tried again: it would be refused again at once, and the pump would spin
   * on it without yielding, freezing the process.
   */
  private unencodable(x: Entry, err: unknown): void {
    this.queue.shift();
    this.singlesLeft = Math.max(0, this.singlesLeft - 1);
    this.stats.dropped++;
    this.o.log.error({ err, stream: x.e.id.stream, seq: x.e.id.seq, ts: x.e.ts, updates: x.e.updates.length }, 'kafka sink: no message can be made of this batch; not published (the archive has it)');
  }

  /**
   * The broker refused a send for what its messages are (sendRefusal), which no retry cures: a
   * send of several batches is made again one batch at a time. A batch refused alone as too
   * large (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE: the topic's max.message.bytes) goes again
   * with its messages past partBytes in parts, partBytes halved at each refusal
   * (partBytesStart down to partBytesMin); one whose time the topic refuses (INVALID_TIMESTAMP)
   * goes again stamped by the broker's clock (its value keeps the batch time). A batch the
   * topic refuses even so is never published, decided once: it leaves the queue, counted in
   * `dropped` and logged (the archive has it).
   */
  private refused(take: Entry[], messages: Message[], err: unknown, why: SendRefusal): void {
    if (take.length > 1) {
      this.singlesLeft = take.length;
      return;
    }
    const x = take[0] as Entry;
    this.partSent = undefined;
    if (why === 'time' && !x.brokerTime) {
      x.brokerTime = true;
      this.stats.brokerTimed++;
      this.o.log.warn({ stream: x.e.id.stream, seq: x.e.id.seq, ts: x.e.ts }, "kafka sink: the topic refuses this batch's time (its message.timestamp.*.max.ms); sending it stamped by the broker's clock (the value keeps the batch time)");
      return;
    }
    const largest = largestValueBytes(messages);
    const partBytes = why === 'too-large' ? nextPartBytes(x.partBytes, largest, KAFKA_SINK_DEFAULTS) : undefined;
    if (partBytes !== undefined) {
      if (x.partBytes === undefined) this.stats.partedBatches++;
      x.partBytes = partBytes;
      this.o.log.warn({ stream: x.e.id.stream, seq: x.e.id.seq, bytes: largest, partBytes }, 'kafka sink: the broker refuses this batch\'s message as too large (its max message size); sending it in parts');
      return;
    }
    const bytes = messagesBytes(messages);
    const at = this.queue.indexOf(x);
    if (at >= 0) this.queue.splice(at, 1);
    this.singlesLeft = Math.max(0, this.singlesLeft - 1);
    this.stats.dropped++;
    this.o.log.error({ err, why, stream: x.e.id.stream, seq: x.e.id.seq, ts: x.e.ts, bytes, updates: x.e.updates.length }, 'kafka sink: the broker refuses this batch (no retry can cure it); not published (the archive has it)');
  }

  /** Sends `take`; one batch of several messages past sendBytesMax (key: path) in several requests, resuming after the last one sent. */
  private async send(take: Entry[], messages: Message[]): Promise<void> {
    const x = take[0] as Entry;
    // Parts go one to a request: the broker bounds a request's record batch as it bounds a message.
    const requestBytesMax = Math.min(KAFKA_SINK_DEFAULTS.sendBytesMax, x.partBytes ?? Infinity);
    if (take.length > 1 || messages.length === 1 || messagesBytes(messages) <= requestBytesMax) {
      await this.producer.send({ topic: this.o.topic, messages, acks: -1 });
      return;
    }
    // A set of parts begun under another fence is begun again: its parts must share one identity.
    let from = this.partSent?.entry === x && this.partSent.fence === this.fence ? this.partSent.count : 0;
    while (from < messages.length) {
      const to = requestEnd(messages, from, requestBytesMax);
      await this.producer.send({ topic: this.o.topic, messages: messages.slice(from, to), acks: -1 });
      from = to;
      this.partSent = { entry: x, count: from, fence: this.fence };
    }
    this.partSent = undefined;
  }

  private pump(): void {
    if (this.pumping || this.stopped) return;
    this.pumping = (async () => {
      while (this.active && !this.stopped && this.queue.length > 0) {
        if (!this.mayPublish()) {
          if (!this.leaseWaiting) this.o.log.warn('kafka sink: the lease is not sure to hold (this process was paused, or Redis is slow); sending nothing until it is renewed');
          this.leaseWaiting = true;
          await new Promise((r) => setTimeout(r, KAFKA_SINK_DEFAULTS.leaseWaitMs));
          continue;
        }
        this.leaseWaiting = false;
        const { take, messages } = this.nextSend();
        if (take.length === 0) continue;
        this.sending = take;
        try {
          await this.send(take, messages);
        } catch (err) {
          const why = sendRefusal(err);
          if (why !== undefined) {
            this.refused(take, messages, err, why);
            continue;
          }
          // Logged at the 1st, 2nd, 4th, 8th... failure in a row: a broker away for an hour is not 14 400 lines.
          const streak = ++this.failStreak;
          this.stats.sendErrors++;
          if ((streak & (streak - 1)) === 0) this.o.log.warn({ err, batches: take.length, failuresInARow: streak }, 'kafka sink: send failed; retrying the same batches');
          await new Promise((r) => setTimeout(r, KAFKA_SINK_DEFAULTS.retryBackoffMs));
          continue;
        } finally {
          this.sending = undefined;
        }
        this.failStreak = 0;
        this.singlesLeft = Math.max(0, this.singlesLeft - take.length);
        for (const x of take) this.noteOnTopic(x.e.id.stream, x.e.id.seq);
        // What the topic now holds leaves the queue's head: these batches, also when the
        // queue was replaced while sending (standby, then a promotion that queued them again).
        let sent = 0;
        while (sent < this.queue.length && this.onTopic((this.queue[sent] as Entry).e)) sent++;
        this.queue.splice(0, sent);
        const last = take[take.length - 1] as Entry;
        this.lastPublished = { stream: last.e.id.stream, seq: last.e.id.seq, ts: last.e.ts };
        this.stats.published += take.length;
      }
    })().finally(() => {
      this.pumping = undefined;
      if (this.active && !this.stopped && this.queue.length > 0) this.pump();
    });
  }
}
