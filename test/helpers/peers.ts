/**
 * The run's shared Kafka broker and Redis (started once by test/global-setup.ts, on first
 * request) and names that keep test files apart on them. Tests must not stop or restart
 * these: the types give no way to; a test that needs to starts a private one
 * (startKafka / startRedis).
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { request } from 'undici';
import { kafkaClient, type KafkaPeer } from './kafka.js';
import type { RedisPeer } from './redis.js';

/** The first request may wait for the JVM to start (scripts/kafka.sh allows 60 s) while the machine is busy. */
export const PEER_START_MAX_MS = 180_000;

async function ask<T>(what: 'kafka' | 'redis'): Promise<T> {
  const base = inject('peersUrl');
  if (!base) throw new Error('peers: no shared peers (test/global-setup.ts is not wired in vitest.config.ts)');
  const res = await request(`${base}/${what}`, { headersTimeout: PEER_START_MAX_MS, bodyTimeout: PEER_START_MAX_MS });
  if (res.statusCode !== 200) throw new Error(`peers: the shared ${what} did not start: ${await res.body.text()}`);
  return (await res.body.json()) as T;
}

let kafka: Promise<KafkaPeer> | undefined;
let redis: Promise<RedisPeer> | undefined;

export function sharedKafka(): Promise<KafkaPeer> {
  kafka ??= ask<{ brokers: string }>('kafka').then(({ brokers }) => ({ brokers, kafka: kafkaClient(brokers) }));
  return kafka;
}

export function sharedRedis(): Promise<RedisPeer> {
  redis ??= ask<RedisPeer>('redis');
  return redis;
}

/**
 * `base` plus a random suffix: a topic, consumer group, source or HA cluster name no other
 * test file on the shared peers uses (Kafka topic and Redis key characters only).
 */
export function uniqueName(base: string): string {
  return `${base}-${randomBytes(4).toString('hex')}`;
}
