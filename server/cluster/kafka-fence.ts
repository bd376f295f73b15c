/**
 * Exactly once across the shards of a cluster for Kafka sources (docs/cluster.md, "Exactly
 * once"). Kafka's committed offset alone gives at-least-once: a shard killed after its batch
 * became durable but before the offset commit leaves the batch to be recorded again by the
 * partition's next owner. Here each partition of a consumer group has a Redis hash,
 * `tapedeck:cluster:<name>:kafka:<group>:<topic>:<partition>`:
 * - `done`: the next offset to record; every offset before it is durably recorded by some
 *   shard (it only grows, and only after the shard's durable flush);
 * - `ishard`, `ifirst`, `ilast`, `isince`: the intent, at most one: the shard that is
 *   recording offsets ifirst..ilast right now.
 *
 * A shard records a fetched message set only under its intent (claim), which starts at
 * `done` (older offsets were recorded by a previous owner: skipped) and is refused while
 * another shard's intent stands (the partition waits). Once its batches are durable it sets
 * `done` past them and drops the intent (resolve), then commits the offset to Kafka. Every
 * batch carries its marker (kafka-marker.ts), so a shard killed with its intent standing
 * settles it when it starts again: its archive's last marker of the partition says how far
 * it recorded durably, and `done` moves exactly there. So an offset is recorded once: only
 * under an intent, only from `done`, and `done` passes it only once it is durable.
 *
 * Redis is the fence, not the Kafka group generation: a shard that lost a partition in a
 * rebalance but is still finishing a fetch cannot record over its successor.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { clusterKeyPrefix } from './membership.js';

/**
 * KEYS: partition. ARGV: shard, first, last, now ms, force, the partition's high watermark,
 * '1' when that watermark was asked of the broker just now (else it is the fetch's).
 * 'own': this shard's own intent stands (settle it first). A `done` that is no offset of
 * this partition (not a number, or past its high watermark as the broker tells it now: the
 * topic was deleted and made again, the hash written by hand) is not trusted to skip
 * anything: it is replaced by `first` and returned, for the shard to say so. A `done` past
 * the fetch's watermark only is 'ahead': another shard that fetched later may have recorded
 * that far (the fetch is older than its claim), so the shard asks the broker and claims again.
 */
const CLAIM = `
local ish = redis.call('HGET', KEYS[1], 'ishard')
local raw = redis.call('HGET', KEYS[1], 'done')
local done = tonumber(raw or '0')
if ish == ARGV[1] then return {'own'} end
if ish and ARGV[5] ~= '1' then return {'wait', ish, redis.call('HGET', KEYS[1], 'isince') or '0'} end
local stale = ''
if done ~= nil and done > tonumber(ARGV[6]) and ARGV[7] ~= '1' then return {'ahead', raw} end
if done == nil or done > tonumber(ARGV[6]) then
  stale = raw
  done = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'done', ARGV[2])
end
local from = tonumber(ARGV[2])
if done > from then from = done end
if from > tonumber(ARGV[3]) then
  redis.call('HDEL', KEYS[1], 'ishard', 'ifirst', 'ilast', 'isince')
  return {'skip', string.format('%d', done)}
end
redis.call('HSET', KEYS[1], 'ishard', ARGV[1], 'ifirst', string.format('%d', from), 'ilast', ARGV[3], 'isince', ARGV[4])
return {'ok', string.format('%d', from), ish or '', stale}`;

/** KEYS: partition. ARGV: shard, last offset recorded durably (-1: none of the intent). */
const RESOLVE = `
if redis.call('HGET', KEYS[1], 'ishard') ~= ARGV[1] then return 0 end
local done = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
local m = tonumber(ARGV[2])
if m + 1 > done then redis.call('HSET', KEYS[1], 'done', string.format('%d', m + 1)) end
redis.call('HDEL', KEYS[1], 'ishard', 'ifirst', 'ilast', 'isince')
return 1`;

/**
 * KEYS: partition. ARGV: shard, own marker's last offset (-1: none). Settles an intent left
 * by a crash. Only a marker inside the intent (ifirst..ilast) moves `done`: the batches of
 * the intent cannot have recorded past ilast, so a marker beyond it is none of theirs (a path
 * written by a push under /tapedeck/kafka, another source's) and skips nothing.
 */
const SETTLE = `
if redis.call('HGET', KEYS[1], 'ishard') ~= ARGV[1] then return -1 end
local done = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
local m = tonumber(ARGV[2])
local ilast = tonumber(redis.call('HGET', KEYS[1], 'ilast') or '-1')
if m >= tonumber(redis.call('HGET', KEYS[1], 'ifirst')) and m <= ilast and m + 1 > done then done = m + 1 end
redis.call('HSET', KEYS[1], 'done', string.format('%d', done))
redis.call('HDEL', KEYS[1], 'ishard', 'ifirst', 'ilast', 'isince')
return done`;

export type Claim =
  | { kind: 'ok'; from: bigint; tookOverFrom: string | undefined }
  | { kind: 'skip'; done: bigint }
  | { kind: 'wait'; holder: string; sinceMs: number };

/** A partition's `done` after settling: how far it is recorded; -1 when no intent of this shard stood. */
type Settled = number;

export interface KafkaFenceOptions {
  redis: Redis;
  cluster: string;
  group: string;
  shard: string;
  log: Logger;
  /**
   * The last offset of a partition this shard's archive holds durably (its last marker),
   * undefined when none: resolves once that marker is in a committed flush.
   */
  recordedUpTo: (topic: string, partition: number) => Promise<bigint | undefined>;
}

export class KafkaFence {
  readonly group: string;
  private readonly o: KafkaFenceOptions;
  private readonly prefix: string;
  readonly stats = { claims: 0, skippedOffsets: 0, waits: 0, forcedTakeovers: 0, settled: 0, lostIntents: 0, staleFences: 0 };

  constructor(o: KafkaFenceOptions) {
    this.o = o;
    this.group = o.group;
    this.prefix = `${clusterKeyPrefix(o.cluster)}:kafka:${o.group}:`;
  }

  private key(topic: string, partition: number): string {
    return `${this.prefix}${topic}:${partition}`;
  }

  private async marker(topic: string, partition: number): Promise<string> {
    return String((await this.o.recordedUpTo(topic, partition)) ?? -1n);
  }

  /** Settles this shard's own intent on a partition from its durable marker (a crash, or a batch that failed). */
  async settleOwn(topic: string, partition: number): Promise<Settled> {
    const done = (await this.o.redis.eval(SETTLE, 1, this.key(topic, partition), this.o.shard, await this.marker(topic, partition))) as number;
    if (done >= 0) {
      this.stats.settled++;
      this.o.log.warn({ topic, partition, done }, 'cluster: settled an in-doubt Kafka batch of this shard from its archive');
    }
    return done;
  }

  /**
   * Asks to record offsets first..last of a partition whose high watermark (as fetched) is
   * `highWatermark`; `force` overrides another shard's intent (in_doubt_max_wait passed).
   * `highWatermarkNow` asks the broker for the partition's end now: called only when `done`
   * lies past the fetch's.
   */
  async claim(topic: string, partition: number, first: string, last: string, force: boolean, highWatermark: string, highWatermarkNow: () => Promise<string>): Promise<Claim> {
    let hwm = highWatermark;
    let fresh = false;
    const ask = async (): Promise<[string, string, string, string?]> => (await this.o.redis.eval(CLAIM, 1, this.key(topic, partition), this.o.shard, first, last, String(Date.now()), force ? '1' : '0', hwm, fresh ? '1' : '0')) as [string, string, string, string?];
    // This shard's own intent standing ('own') is settled first, then asked again.
    const askSettled = async (): Promise<[string, string, string, string?]> => {
      const first = await ask();
      if (first[0] !== 'own') return first;
      await this.settleOwn(topic, partition);
      return ask();
    };
    let r = await askSettled();
    if (r[0] === 'ahead') {
      hwm = await highWatermarkNow();
      fresh = true;
      r = await askSettled();
    }
    if (r[0] === 'ok' && r[3] !== undefined && r[3] !== '') {
      this.stats.staleFences++;
      this.o.log.error({ topic, partition, done: r[3].slice(0, 40), highWatermark, first }, 'cluster: the Kafka fence in Redis said offsets past the partition\'s end were recorded (the topic was made again, or the key was written by hand); it no longer skips anything: recording from the fetched offset');
    }
    if (r[0] === 'wait') {
      this.stats.waits++;
      return { kind: 'wait', holder: r[1], sinceMs: Number(r[2]) };
    }
    if (r[0] === 'skip') {
      this.stats.skippedOffsets += Number(BigInt(last) - BigInt(first) + 1n);
      return { kind: 'skip', done: BigInt(r[1]) };
    }
    this.stats.claims++;
    const from = BigInt(r[1]);
    this.stats.skippedOffsets += Number(from - BigInt(first));
    if (r[2] !== '') {
      this.stats.forcedTakeovers++;
      this.o.log.warn({ topic, partition, from: r[1], holder: r[2] }, 'cluster: took over another shard\'s in-doubt Kafka batch after in_doubt_max_wait; it may be recorded twice');
    }
    return { kind: 'ok', from, tookOverFrom: r[2] === '' ? undefined : r[2] };
  }

  /** After the claimed batches are durable: `done` passes `last` and the intent is dropped. */
  async resolve(topic: string, partition: number, last: string): Promise<void> {
    const ok = (await this.o.redis.eval(RESOLVE, 1, this.key(topic, partition), this.o.shard, last)) as number;
    if (ok !== 1) {
      this.stats.lostIntents++;
      this.o.log.warn({ topic, partition, last }, 'cluster: this shard\'s Kafka intent was taken over before it resolved it (in_doubt_max_wait); the batch may be recorded twice');
    }
  }

  /**
   * At start, before consuming: settles every intent this shard left standing (killed
   * between claim and resolve) from its archive's markers, so that a partition's next owner
   * stops waiting. Returns how many it settled.
   */
  async settle(): Promise<number> {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.o.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const rest = key.slice(this.prefix.length);
        const colon = rest.lastIndexOf(':');
        const partition = Number(rest.slice(colon + 1));
        if (colon < 0 || !Number.isInteger(partition)) continue;
        if ((await this.settleOwn(rest.slice(0, colon), partition)) >= 0) n++;
      }
    } while (cursor !== '0');
    return n;
  }
}
