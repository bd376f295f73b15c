/**
 * A shard's Kafka batch markers (`/tapedeck/kafka/<source>/<topic>/<partition>`, docs/cluster.md
 * "Exactly once") are what settling an in-doubt batch reads back from the archive; a push could
 * write one, and a forged marker moves the fence (see 87c16ce). In a cluster a push of such a
 * path is now refused whole (400 TPD_BAD_ARGUMENT), nothing of it recorded. A shard process
 * (built), the run's real Redis.
 */
import { describe, expect, it } from 'vitest';
import { ShardCluster, useShardPeers } from './helpers/cluster.js';
import { uniqueName } from './helpers/peers.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';

const peers = useShardPeers();

describe('a push of a Kafka marker path in a cluster', () => {
  it('is refused whole; other paths under /tapedeck are not', async () => {
    const c = new ShardCluster({ dir: await tmpDir(), redisUrl: peers().redis.url, name: uniqueName('audit9-marker') });
    const a = await c.start('a');
    const push = (body: string): Promise<Response> => fetch(`${a.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    for (const path of ['/tapedeck/kafka/k/t/0', '/tapedeck/kafka']) {
      const r = await push(`{"updates":{"/ok":1}}\n${JSON.stringify({ updates: { [path]: { first: 0, last: 1_000_000 } } })}\n`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('TPD_BAD_ARGUMENT');
    }
    expect((await push('{"updates":{"/tapedeck/kafkaesque":1}}\n')).status).toBe(200);
    expect(await c.stop(a)).toBe(0);
    expect((await readArchive(a.archive)).flatMap((b) => b.updates.map(([p]) => p))).toEqual(['/tapedeck/kafkaesque']);
  }, 40_000);
});
