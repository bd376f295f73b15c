/**
 * Settling an in-doubt Kafka batch (docs/cluster.md, "Exactly once", step 4) reads the
 * shard's last marker of the partition from its archive's latest state. A marker path is an
 * ordinary path: a push under /tapedeck/kafka (or another source) can write one, and a
 * marker naming an offset past the intent moved `done` there: every message up to it
 * skipped, committed and never recorded. Only a marker inside the intent (ifirst..ilast)
 * moves `done` now. Real Redis (the run's), a real archive and recorder.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { KafkaFence } from '../server/cluster/kafka-fence.js';
import { kafkaMarkerPath, markerLast } from '../server/cluster/kafka-marker.js';
import { clusterKeyPrefix } from '../server/cluster/membership.js';
import { Recorder } from '../server/recorder.js';
import { Archive } from '../storage/index.js';
import { PEER_START_MAX_MS, sharedRedis, uniqueName } from './helpers/peers.js';
import type { RedisPeer } from './helpers/redis.js';
import { tmpDir } from './helpers/tmp.js';

let redis: RedisPeer;
beforeAll(async () => {
  redis = await sharedRedis();
}, PEER_START_MAX_MS);

describe('settling an intent from the archive\'s marker', () => {
  it.each([
    ['a marker past the intent (written by a push): done stays', 1_000_000, '10'],
    ['a marker inside the intent: done moves past it', 14, '15'],
    ['a marker before the intent: done stays', 3, '10'],
  ])('%s', async (_what, markedLast, done) => {
    const cluster = uniqueName('audit9-settle');
    const key = `${clusterKeyPrefix(cluster)}:kafka:g:t:0`;
    const ctl = new Redis(redis.url);
    onTestFinished(() => ctl.disconnect());
    // Shard s1 was killed while recording offsets 10..19 of t/0 (its intent stands).
    await ctl.hset(key, 'done', '10', 'ishard', 's1', 'ifirst', '10', 'ilast', '19', 'isince', '0');
    const archive = await Archive.open(await tmpDir('tapedeck-audit9-settle-'), { flushIntervalMs: 0 });
    onTestFinished(() => archive.close());
    const recorder = await Recorder.open(archive);
    const marker = kafkaMarkerPath('k', 't', 0);
    await recorder.write('push', [[marker, { first: 0, last: markedLast }]], 1_760_000_000_000_000);
    const fence = new KafkaFence({
      redis: ctl, cluster, group: 'g', shard: 's1', log: pino({ level: 'silent' }),
      // As the cluster runtime reads it: the archive's latest value of the marker path, once durable.
      recordedUpTo: async () => {
        await recorder.durable(recorder.latestTs);
        return markerLast(recorder.latest.get(marker));
      },
    });
    await fence.settleOwn('t', 0);
    expect(await ctl.hgetall(key)).toEqual({ done });
  });
});
