/**
 * This recorder as one shard of a cluster (docs/cluster.md), wired to the rest of the
 * process by server/main.ts:
 * - before the sources are made: the Ownership of paths (own globs) and, for poll sources,
 *   a sink that keeps only the paths this shard owns;
 * - once the server listens: membership in Redis (registration, which refuses overlapping
 *   globs, and the lease renewed with the committed horizon), the ownership checks of push
 *   and remote_write, and the Kafka sources' consumer group and fence.
 */
import type { Logger } from 'pino';
import { TapedeckError } from '../../protocol/errors.js';
import type { Update } from '../../protocol/value.js';
import type { ClusterConfig } from './config.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { Membership } from './membership.js';
import { Ownership } from './ownership.js';
import { KafkaFence } from './kafka-fence.js';
import { isMarkerPath, KAFKA_MARKER_PREFIX, kafkaMarkerPath, markerLast } from './kafka-marker.js';
import { setOwnershipCheck } from './source-ownership.js';
import { horizonOf } from '../horizon.js';
import type { Recorder, RecorderSink } from '../recorder.js';
import type { Source } from '../sources/source.js';
import { KafkaSource } from '../sources/kafka.js';
import { PushSource, type OwnershipCheck } from '../sources/push.js';

/** Source types that push (ownership refuses foreign paths) or consume a group (Kafka); every other type polls. */
const NOT_POLLED: ReadonlySet<string> = new Set(['push', 'remote_write', 'kafka']);

export function isPollSource(type: string): boolean {
  return !NOT_POLLED.has(type);
}

/**
 * A poll source's sink in a cluster: only the paths this shard owns are recorded (every
 * shard may poll the same upstream; each keeps its part). The rest are counted.
 */
export function ownedSink(sink: RecorderSink, ownership: Ownership, counts: { notOwnedUpdates: number }): RecorderSink {
  const keep = (updates: Update[]): Update[] => {
    const out = updates.filter((u) => ownership.owns(u[0]));
    counts.notOwnedUpdates += updates.length - out.length;
    return out;
  };
  return {
    write: async (updates, tsUs, id) => {
      const kept = keep(updates);
      return kept.length === 0 ? undefined : sink.write(kept, tsUs, id);
    },
    record: async (updates, tsUs, id) => {
      const kept = keep(updates);
      if (kept.length === 0) return { ts: undefined, kept: 0, filtered: updates.length };
      const out = await sink.record(kept, tsUs, id);
      return { ...out, filtered: out.filtered + updates.length - kept.length };
    },
    flush: () => (sink.flush ? sink.flush() : Promise.resolve()),
    durable: (ts) => sink.durable(ts),
    keeps: (path) => ownership.owns(path) && sink.keeps(path),
    ...(sink.lastTsUs ? { lastTsUs: () => (sink.lastTsUs as () => number)() } : {}),
  };
}

export interface ClusterStatus {
  shard: string;
  membership: ReturnType<Membership['status']>;
  notOwnedUpdates: number;
  kafka: Array<{ source: string; group: string } & KafkaFence['stats']>;
}

export class ClusterRuntime {
  readonly config: ClusterConfig;
  readonly ownership: Ownership;
  readonly counts = { notOwnedUpdates: 0 };
  private membership: Membership | undefined;
  private readonly fences: Array<{ source: string; fence: KafkaFence }> = [];

  constructor(config: ClusterConfig) {
    this.config = config;
    this.ownership = new Ownership(config.shard, config.globs);
    this.shardDirectory = {
      self: config.shard,
      authorization: config.token === null ? undefined : `Bearer ${config.token}`,
      shards: (): Promise<readonly ShardInfo[]> => {
        if (!this.membership) return Promise.reject(new TapedeckError('TPD_CLUSTER_UNAVAILABLE', 'this shard has not joined its cluster yet'));
        return this.membership.shards();
      },
    };
  }

  /** The Redis membership (undefined until start()). */
  get directory(): Membership | undefined {
    return this.membership;
  }

  /**
   * The directory for merged reads, usable before start() (the app is built before the
   * server listens, and the membership needs the listen URL): until then it throws
   * TPD_CLUSTER_UNAVAILABLE.
   */
  readonly shardDirectory: ShardDirectory;

  /**
   * Joins the cluster once the server listens at `listenUrl`, before the sources start:
   * throws TPD_BAD_CONFIG when the globs overlap another shard's.
   */
  async start(listenUrl: string, recorder: Recorder | undefined, sources: readonly Source[], log: Logger): Promise<void> {
    const c = this.config;
    const archive = recorder?.archive;
    this.membership = await Membership.start({
      redisUrl: c.redisUrl,
      cluster: c.name,
      shard: c.shard,
      url: c.advertiseUrl ?? listenUrl,
      globs: c.globs,
      leaseTtlMs: c.leaseTtlMs,
      horizonUs: () => (archive ? horizonOf(archive.lastTs) : null),
      log,
    });
    const m = this.membership;
    this.ownership.update(m.known());
    m.on('shards', () => this.ownership.update(m.known()));
    const check: OwnershipCheck = { check: (paths) => this.check(paths) };
    for (const s of sources) {
      if (s instanceof PushSource) s.ownership = check;
      else if (s.type === 'remote_write') setOwnershipCheck(s, check);
      else if (s instanceof KafkaSource && recorder) this.joinKafka(s, recorder, m, log);
    }
  }

  /**
   * Until membership was read once, a path this shard does not own has an unknown owner:
   * refused as unavailable. The Kafka batch markers' paths are the fence's (settling an
   * in-doubt batch reads them): never taken from a push.
   */
  private check(given: Iterable<string>): void {
    const paths = Array.isArray(given) ? (given as string[]) : [...given];
    for (const p of paths) if (isMarkerPath(p)) throw new TapedeckError('TPD_BAD_ARGUMENT', `${p.slice(0, 200)}: paths under ${KAFKA_MARKER_PREFIX} are the cluster's Kafka batch markers (docs/cluster.md, "Exactly once"); a push cannot write them`);
    const m = this.membership;
    if (m && m.status().registered) {
      this.ownership.check(paths);
      return;
    }
    for (const p of paths) {
      if (!this.ownership.owns(p)) throw new TapedeckError('TPD_CLUSTER_UNAVAILABLE', `the owner of ${p} is not known yet (Redis, which holds the cluster's membership, has not been reached); retry later`);
    }
  }

  private joinKafka(s: KafkaSource, recorder: Recorder, m: Membership, log: Logger): void {
    const fence = new KafkaFence({
      redis: m.redis,
      cluster: this.config.name,
      group: s.clusterGroupId(this.config.name),
      shard: this.config.shard,
      log: log.child({ source: s.name }),
      recordedUpTo: async (topic, partition) => {
        // Read before the wait: the marker is then at or before the batch waited for.
        const v = recorder.latest.get(kafkaMarkerPath(s.name, topic, partition));
        if (recorder.latestTs > 0) await recorder.durable(recorder.latestTs);
        return markerLast(v);
      },
    });
    s.joinCluster({ fence, inDoubtMaxWaitMs: this.config.inDoubtMaxWaitMs });
    this.fences.push({ source: s.name, fence });
  }

  status(): ClusterStatus | undefined {
    const m = this.membership;
    if (!m) return undefined;
    return { shard: this.config.shard, membership: m.status(), notOwnedUpdates: this.counts.notOwnedUpdates, kafka: this.fences.map((f) => ({ source: f.source, group: f.fence.group, ...f.fence.stats })) };
  }

  /** Gives the lease up (the shard shows live: false at once); called after the sources stopped. */
  async stop(): Promise<void> {
    await this.membership?.stop();
  }
}
