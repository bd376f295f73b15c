/**
 * The recorder: sources hand it batches; it keeps the updates the record spec selects
 * (overlapping globs select a path once), appends them to the archive writer, and keeps
 * the latest value of every recorded path in memory for GET /api/v1/state.
 *
 * Backpressure: past the writer's high-water mark every write first awaits drain(), so a
 * fast producer (push ingest) is slowed to the disk's pace instead of growing a queue.
 *
 * Durability: durable(ts) resolves once the batch recorded at `ts` is in a committed,
 * fsynced flush (group commit: concurrent waiters share one commit), which is what an
 * `ack=durable` push and the Kafka source's offset commits wait for.
 */
import { EventEmitter } from 'node:events';
import type { Archive, ArchiveWriter } from '../storage/index.js';
import { compileSpec, type PathMatcher } from '../protocol/glob.js';
import { TapedeckError } from '../protocol/errors.js';
import type { Update, Value } from '../protocol/value.js';
import { SERVER_LIMITS } from './limits.js';
import type { BatchIdentity, IdentifiedSink } from './sinks/identity.js';


export interface BatchEvent {
  source: string;
  ts: number;
  updates: number;
}

/** `recorded`: one per batch appended, with its updates and its source identity (for the Kafka sink and active/standby). */
export interface RecordedEvent {
  source: string;
  ts: number;
  updates: Update[];
  id: BatchIdentity;
}

/** What became of one batch handed to the recorder. */
export interface RecordOutcome {
  /** The batch's timestamp, or undefined when the spec kept none of its updates (nothing was appended). */
  ts: number | undefined;
  /** Updates appended. */
  kept: number;
  /** Updates the record spec left out. */
  filtered: number;
}

/** The recorder's sink: a batch sink that also tells what it kept and can wait for durability. */
export interface RecorderSink extends IdentifiedSink {
  record(updates: Update[], tsUs?: number, id?: BatchIdentity): Promise<RecordOutcome>;
  durable(ts: number): Promise<void>;
}

export class Recorder extends EventEmitter {
  readonly archive: Archive;
  readonly spec: readonly string[];
  private readonly writer: ArchiveWriter;
  private readonly matcher: PathMatcher | undefined;
  private readonly matchCache = new Map<string, boolean>();
  /** Latest value of every recorded path. */
  readonly latest = new Map<string, Value>();
  /** Timestamp (µs) of the last batch recorded (0 before any). */
  latestTs = 0;
  /** Bumped by every recorded batch: equal versions mean equal latest values. */
  version = 0;
  readonly stats = { batches: 0, updates: 0, filteredUpdates: 0 };
  /** Glob list -> the latest paths it matches; valid while no new path appears. */
  private readonly queryCache = new Map<string, string[]>();
  private queryCachePaths = 0;

  private constructor(archive: Archive, spec: readonly string[]) {
    super();
    this.setMaxListeners(0);
    if (!archive.writer) throw new TapedeckError('TPD_ARCHIVE_READONLY', 'the recorder needs an archive opened for writing');
    this.archive = archive;
    this.writer = archive.writer;
    this.spec = spec;
    this.matcher = spec.length === 0 || spec.includes('/**') ? undefined : compileSpec(spec);
  }

  /** A recorder over an open archive; its latest values start from the archive's end state. */
  static async open(archive: Archive, opts: { spec?: readonly string[] } = {}): Promise<Recorder> {
    const r = new Recorder(archive, opts.spec ?? ['/**']);
    if (archive.paths.length > 0) {
      const c = archive.cursor();
      await c.seek('end');
      for (const [p, v] of await c.state()) r.latest.set(p, v);
      r.latestTs = archive.lastTs;
    }
    return r;
  }

  /** A sink for one source: batches it writes are counted and announced under its name. */
  sink(source: string): RecorderSink {
    return {
      write: (updates, tsUs, id) => this.write(source, updates, tsUs, id),
      record: (updates, tsUs, id) => this.record(source, updates, tsUs, id),
      flush: () => this.flush(),
      durable: (ts) => this.durable(ts),
    };
  }

  /**
   * Records one batch: resolves with its timestamp, or undefined when the spec kept none of
   * its updates. Throws (rejects) with the writer's TapedeckError when the batch is refused.
   */
  async write(source: string, updates: Update[], tsUs?: number, id?: BatchIdentity): Promise<number | undefined> {
    return (await this.record(source, updates, tsUs, id)).ts;
  }

  /** Records one batch and says how many of its updates were kept and how many the spec left out. */
  async record(source: string, updates: Update[], tsUs?: number, id?: BatchIdentity): Promise<RecordOutcome> {
    if (this.writer.needsDrain) await this.writer.drain();
    const kept = this.matcher ? this.filter(updates) : updates;
    const filtered = updates.length - kept.length;
    if (kept.length === 0) return { ts: undefined, kept: 0, filtered };
    const ts = this.writer.append(kept, tsUs);
    const latest = this.latest;
    for (let i = 0; i < kept.length; i++) {
      const u = kept[i] as Update;
      latest.set(u[0], u[1] ?? null);
    }
    this.latestTs = ts;
    this.version++;
    this.stats.batches++;
    this.stats.updates += kept.length;
    if (this.listenerCount('batch') > 0) this.emit('batch', { source, ts, updates: kept.length } satisfies BatchEvent);
    // Without an identity from the source, the stream is the source and the seq the local timestamp.
    if (this.listenerCount('recorded') > 0) this.emit('recorded', { source, ts, updates: kept, id: id ?? { stream: source, seq: String(ts) } } satisfies RecordedEvent);
    return { ts, kept: kept.length, filtered };
  }

  /**
   * Resolves once the batch recorded at `ts` (and everything before it) is in a committed,
   * fsynced flush; rejects with the writer's error (TPD_DISK_FULL when a full disk holds the
   * commit up too long). The writer's group commit merges concurrent waiters, so a hundred
   * pushers waiting at once cost one commit, not a hundred.
   */
  durable(ts: number): Promise<void> {
    return this.writer.whenDurable(ts);
  }

  /**
   * The recorded paths matching any of `globs`, in order of first appearance. Cached per
   * glob list until a new path is recorded, so a latest-state query costs one lookup per
   * matching path rather than a glob test per recorded path.
   */
  pathsMatching(globs: readonly string[]): string[] {
    if (this.queryCachePaths !== this.latest.size || this.queryCache.size >= SERVER_LIMITS.stateGlobListsCachedMax) {
      this.queryCache.clear();
      this.queryCachePaths = this.latest.size;
    }
    const key = globs.join('\n');
    let hit = this.queryCache.get(key);
    if (!hit) {
      const match = compileSpec(globs);
      hit = [];
      for (const p of this.latest.keys()) if (match(p)) hit.push(p);
      this.queryCache.set(key, hit);
    }
    return hit;
  }

  /** Resolves when everything recorded so far is committed to disk. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  private filter(updates: Update[]): Update[] {
    const m = this.matcher as PathMatcher;
    const cache = this.matchCache;
    let out: Update[] | undefined;
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i] as Update;
      let ok = cache.get(u[0]);
      if (ok === undefined) {
        ok = typeof u[0] === 'string' && m(u[0]);
        if (cache.size >= SERVER_LIMITS.specCachePathsMax) cache.clear();
        cache.set(u[0], ok);
      }
      if (ok) {
        out?.push(u);
      } else if (!out) {
        out = updates.slice(0, i);
      }
    }
    if (!out) return updates;
    this.stats.filteredUpdates += updates.length - out.length;
    return out;
  }
}
