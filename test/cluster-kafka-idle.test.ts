/**
 * What an idle shard wakes up for (docs/cluster.md, "Capacity"). kafkajs' idle loop, fixed
 * by server/cluster/kafka-request-queue.ts (imported by every Kafka source): an idle
 * connection arms no timer, while a request held back by a throttle is still sent; against
 * the run's real broker, an idle consumer checks its request queue about once per response,
 * not a thousand times a second. Request timeouts are checked every second, not every
 * 100 ms. A node's merged-session housekeeping runs only while merged sessions exist.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { REQUEST_TIMEOUT_CHECK_MS, kafkaIdleLoopFixed, idleRequestQueue, loopsWhenIdle, requestQueueClass, requestTimeoutCheckMs } from '../server/cluster/kafka-request-queue.js';
import { MergedSource } from '../server/cluster/merged-session-source.js';
import { StaticDirectory } from '../server/cluster/static-directory.js';
import { createTopic, kafkaClient } from './helpers/kafka.js';
import { sharedKafka, uniqueName } from './helpers/peers.js';
import { until } from './helpers/until.js';

describe("kafkajs' request queue", () => {
  it('arms no timer when nothing is pending and no throttle runs', () => {
    expect(kafkaIdleLoopFixed).toBe(true);
    expect(loopsWhenIdle()).toBe(false);
  });

  it('still sends a request held back by a throttle once the throttle is over', async () => {
    const q = idleRequestQueue();
    let sent = false;
    q.throttledUntil = Date.now() + 20;
    q.pending.push({ send: () => { sent = true; }, expectResponse: true, correlationId: 1 });
    q.scheduleCheckPendingRequests();
    expect(q.throttleCheckTimeoutId).not.toBeNull();
    await until(() => sent, 5_000, 'the held request sent');
    expect(q.pending).toHaveLength(0);
  });

  it('keeps a check at the end of a running throttle', () => {
    const q = idleRequestQueue();
    q.throttledUntil = Date.now() + 60_000;
    q.scheduleCheckPendingRequests();
    expect(q.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(q.throttleCheckTimeoutId as NodeJS.Timeout);
  });

  it('an idle consumer of a real broker checks its queues about once per response', async () => {
    const kafka = await sharedKafka();
    const topic = uniqueName('idle-loop');
    await createTopic(kafka.kafka, topic, 2);
    const proto = requestQueueClass().prototype;
    const check = proto.checkPendingRequests;
    let checks = 0;
    proto.checkPendingRequests = function (this: typeof proto) {
      checks++;
      check.call(this);
    };
    onTestFinished(() => void (proto.checkPendingRequests = check));
    const consumer = kafkaClient(kafka.brokers).consumer({ groupId: uniqueName('idle-loop'), sessionTimeout: 6_000, heartbeatInterval: 500, maxWaitTimeInMs: 1_000 });
    onTestFinished(() => consumer.disconnect());
    let heartbeats = 0;
    let responses = 0;
    consumer.on(consumer.events.HEARTBEAT, () => void heartbeats++);
    consumer.on(consumer.events.REQUEST, () => void responses++);
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({ eachMessage: async () => undefined });
    await until(() => heartbeats >= 2, 60_000, 'the consumer in its group, heartbeating');
    const c0 = checks;
    const r0 = responses;
    const h0 = heartbeats;
    // Idle for three heartbeats (at least a second): the loop made hundreds of checks per connection.
    await until(() => heartbeats >= h0 + 3, 60_000, 'three more heartbeats');
    const made = checks - c0;
    const answered = responses - r0;
    console.log(`idle consumer: ${made} queue checks for ${answered} requests over 3 heartbeats`);
    expect(answered).toBeGreaterThan(0);
    expect(made).toBeLessThanOrEqual(answered + 5);
  });

  it('checks in-flight requests for their timeout every second, or at the timeout when shorter', () => {
    expect(requestTimeoutCheckMs(30_000)).toBe(REQUEST_TIMEOUT_CHECK_MS);
    expect(requestTimeoutCheckMs(300)).toBe(300);
  });
});

describe('merged-session housekeeping', () => {
  it('runs no timer while no merged session is bound, one while one is', async () => {
    const src = new MergedSource(new StaticDirectory('front', []), 100);
    expect(src.housekeeping).toBe(false);
    const session = { id: 's1', closed: false, attached: true, waitingForData: false, wake: () => undefined };
    src.bind(src.cursor() as never, session);
    expect(src.housekeeping).toBe(true);
    session.closed = true;
    await until(() => !src.housekeeping, 5_000, 'the housekeeping timer gone with the last session');
    src.close();
  });
});
