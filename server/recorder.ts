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
import { valueArray, type Update, type Value } from '../protocol/value.js';
import { LatestValues } from './latest-values.js';
import { SERVER_LIMITS } from './limits.js';
import { forMatchingPaths } from './routes/queries.js';
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

/** A slot's writer id when the spec leaves its path out (writer ids are far fewer). */
const LEFT_OUT = 0xffff_ffff;

/** What recording one batch did (undefined ts: nothing was appended). */
interface Recorded {
  ts: number | undefined;
  kept: number;
  filtered: number;
  /** The kept updates when the spec left some out (for `recorded`); undefined when all were kept or no one listens. */
  keptList?: Update[] | undefined;
}

/** The recorder's sink: a batch sink that also tells what it kept and can wait for durability. */
export interface RecorderSink extends IdentifiedSink {
  record(updates: Update[], tsUs?: number, id?: BatchIdentity): Promise<RecordOutcome>;
  durable(ts: number): Promise<void>;
  /** False for a path the record spec leaves out (record() never appends it). */
  keeps(path: string): boolean;
}

export class Recorder extends EventEmitter {
  readonly archive: Archive;
  readonly spec: readonly string[];
  private readonly writer: ArchiveWriter;
  private readonly matcher: PathMatcher | undefined;
  /** Paths the spec leaves out (kept paths have a slot in latest instead). */
  private readonly leftOut = new Set<string>();
  /** Latest value of every recorded path. */
  readonly latest = new LatestValues();
  /** Timestamp (µs) of the last batch recorded (0 before any). */
  latestTs = 0;
  /** Bumped by every recorded batch: equal versions mean equal latest values. */
  version = 0;
  readonly stats = { batches: 0, updates: 0, filteredUpdates: 0 };
  /** Glob list -> the latest paths it matches; valid while no new path appears. */
  private readonly queryCache = new Map<string, string[]>();
  private queryCachePaths = 0;
  /** The writer's id (writer.pathId) of each latest-values slot. */
  private slotWriterIds = new Uint32Array(1024);
  private scratch = new BatchColumns(1024);

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
      // Paths the spec (perhaps changed since) leaves out keep their latest value but record nothing.
      for (const [p, v] of await c.state()) r.latest.setSlot(r.newSlot(p, r.matcher !== undefined && !r.matcher(p)), v);
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
      keeps: (path) => this.recordsPath(path),
      lastTsUs: () => this.writer.lastTimestamp,
    };
  }

  /** False for a path the record spec leaves out: record() never appends it. */
  recordsPath(path: string): boolean {
    return this.matcher === undefined || this.keeps(path);
  }

  /**
   * Records one batch: resolves with its timestamp, or undefined when the spec kept none of
   * its updates. Throws (rejects) with the writer's TapedeckError when the batch is refused.
   */
  async write(source: string, updates: Update[], tsUs?: number, id?: BatchIdentity): Promise<number | undefined> {
    return (await this.record(source, updates, tsUs, id)).ts;
  }

  /**
   * Records one batch and says how many of its updates were kept and how many the spec left
   * out. A batch whose paths all have a slot (the spec's decision, the writer's id, the
   * latest value: one lookup per update) goes to the writer as columns (appendColumns); one
   * with a path not recorded before, or a malformed one, as the kept pairs (append), and its
   * new paths get their slots once it is recorded: a refused batch leaves nothing behind.
   * Both make the same blocks.
   */
  async record(source: string, updates: Update[], tsUs?: number, id?: BatchIdentity): Promise<RecordOutcome> {
    if (this.writer.needsDrain) await this.writer.drain();
    const wantKept = this.listenerCount('recorded') > 0;
    const r = (Array.isArray(updates) ? this.recordColumns(updates, tsUs, wantKept) : undefined) ?? this.recordPairs(updates, tsUs);
    this.stats.filteredUpdates += r.filtered;
    if (r.ts === undefined) return { ts: undefined, kept: 0, filtered: r.filtered };
    const ts = r.ts;
    this.latestTs = ts;
    this.version++;
    this.stats.batches++;
    this.stats.updates += r.kept;
    if (this.listenerCount('batch') > 0) this.emit('batch', { source, ts, updates: r.kept } satisfies BatchEvent);
    // Without an identity from the source, the stream is the source and the seq the local timestamp.
    if (wantKept) this.emit('recorded', { source, ts, updates: r.keptList ?? updates, id: id ?? { stream: source, seq: String(ts) } } satisfies RecordedEvent);
    return { ts, kept: r.kept, filtered: r.filtered };
  }

  /**
   * The column path: undefined (nothing done) when a kept path has no slot yet or an update
   * is malformed. `keptList` only when asked for and the spec left some out.
   */
  private recordColumns(updates: Update[], tsUs: number | undefined, wantKept: boolean): Recorded | undefined {
    const n = updates.length;
    const cols = n <= SERVER_LIMITS.recorderScratchUpdatesMax ? this.scratchFor(n) : new BatchColumns(n);
    const latest = this.latest;
    const writerIds = this.slotWriterIds;
    let kept = 0;
    let keptList: Update[] | undefined;
    let allNum = true;
    for (let i = 0; i < n; i++) {
      const u = updates[i];
      if (typeof u !== 'object' || u === null) return undefined;
      const slot = latest.slot(u[0]);
      const writerId = slot < 0 ? LEFT_OUT : (writerIds[slot] as number);
      if (writerId === LEFT_OUT) {
        if (slot >= 0 || (this.matcher && !this.specKeeps(u[0]))) {
          keptList ??= wantKept ? updates.slice(0, i) : undefined;
          continue;
        }
        if (!allNum) cols.values.fill(null, 0, kept);
        return undefined;
      }
      const v = u[1] ?? null;
      keptList?.push(u);
      cols.at[kept] = i;
      cols.slots[kept] = slot;
      cols.ids[kept] = writerId;
      if (allNum && typeof v === 'number') cols.nums[kept] = v;
      else {
        if (allNum) cols.numbersToValues(kept);
        allNum = false;
        cols.values[kept] = v;
      }
      kept++;
    }
    if (kept === 0) return { ts: undefined, kept, filtered: n, keptList };
    let ts: number;
    try {
      ts = this.writer.appendColumns(cols.ids.subarray(0, kept), allNum ? cols.nums.subarray(0, kept) : cols.valuesOf(kept), tsUs);
    } finally {
      if (!allNum) cols.values.fill(null, 0, kept); // drop references to the caller's values
    }
    for (let k = 0; k < kept; k++) latest.setSlot(cols.slots[k] as number, (updates[cols.at[k] as number] as Update)[1] ?? null);
    return { ts, kept, filtered: n - kept, keptList };
  }

  /**
   * The pair path: the updates the spec keeps (a malformed one too, for append to refuse
   * with TPD_BAD_ARGUMENT) through append, which finds the first bad path or value as it
   * always did; the kept paths get their slots once the batch is recorded.
   */
  private recordPairs(updates: Update[], tsUs: number | undefined): Recorded {
    if (!Array.isArray(updates)) return { ts: this.writer.append(updates, tsUs), kept: 0, filtered: 0 }; // throws TPD_BAD_ARGUMENT
    const kept = this.matcher ? updates.filter((u) => typeof u !== 'object' || u === null || this.keeps(u[0])) : updates;
    const filtered = updates.length - kept.length;
    if (kept.length === 0) return { ts: undefined, kept: 0, filtered };
    const ts = this.writer.append(kept, tsUs);
    const latest = this.latest;
    for (const u of kept) {
      const slot = latest.slot(u[0]);
      latest.setSlot(slot >= 0 ? slot : this.newSlot(u[0]), u[1] ?? null);
    }
    return { ts, kept: kept.length, filtered, keptList: kept === updates ? undefined : kept };
  }

  /** The spec keeps `path` (a slot knows; else the spec is asked). */
  private keeps(path: unknown): boolean {
    const slot = this.latest.slot(path as string);
    return slot >= 0 ? this.slotWriterIds[slot] !== LEFT_OUT : this.specKeeps(path);
  }

  /** A slot for `path`: its writer id, or LEFT_OUT for a path the spec leaves out (one in the archive's state at start). */
  private newSlot(path: string, leftOut = false): number {
    const slot = this.latest.addSlot(path);
    if (slot >= this.slotWriterIds.length) {
      const next = new Uint32Array(this.slotWriterIds.length * 2);
      next.set(this.slotWriterIds);
      this.slotWriterIds = next;
    }
    this.slotWriterIds[slot] = leftOut ? LEFT_OUT : this.writer.pathId(path);
    return slot;
  }

  private scratchFor(n: number): BatchColumns {
    if (this.scratch.capacity < n) this.scratch = new BatchColumns(Math.max(n, this.scratch.capacity * 2));
    return this.scratch;
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
   * matching path rather than a glob test per recorded path. The paths are matched in
   * slices (forMatchingPaths): costly globs over many paths never hold the event loop.
   */
  async pathsMatching(globs: readonly string[]): Promise<string[]> {
    const key = globs.join('\n');
    const cached = this.queryCachePaths === this.latest.size ? this.queryCache.get(key) : undefined;
    if (cached) return cached;
    const hit: string[] = [];
    await forMatchingPaths(compileSpec(globs), this.latest.keys(), (p) => {
      hit.push(p);
    });
    // The path list only grows and its iterator walks what was added meanwhile: here, with
    // no await since the walk ended, `hit` holds every match among the latest.size paths.
    if (this.queryCachePaths !== this.latest.size || this.queryCache.size >= SERVER_LIMITS.stateGlobListsCachedMax) {
      this.queryCache.clear();
      this.queryCachePaths = this.latest.size;
    }
    this.queryCache.set(key, hit);
    return hit;
  }

  /** Resolves when everything recorded so far is committed to disk. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * The spec's decision for a path with no slot yet. A kept path gets a slot (and is not
   * asked again); the paths it leaves out are cached, bounded, as they get no slot.
   */
  private specKeeps(path: unknown): boolean {
    if (this.leftOut.has(path as string)) return false;
    const ok = typeof path === 'string' && (this.matcher as PathMatcher)(path);
    if (!ok) {
      if (this.leftOut.size >= SERVER_LIMITS.specCachePathsMax) this.leftOut.clear();
      this.leftOut.add(path as string);
    }
    return ok;
  }
}

/**
 * One batch as columns, reused from batch to batch: the kept updates' places, slots and writer ids,
 * and their values unboxed while all are numbers (nums), else in values.
 */
class BatchColumns {
  /** Index in the batch of each kept update. */
  readonly at: Uint32Array;
  readonly slots: Uint32Array;
  readonly ids: Uint32Array;
  readonly nums: Float64Array;
  // Generic (tagged) elements: a double stored into an array of only doubles may lose a
  // signalling NaN's bits (protocol/value.ts valueArray says why).
  readonly values: Value[];

  constructor(readonly capacity: number) {
    this.at = new Uint32Array(capacity);
    this.slots = new Uint32Array(capacity);
    this.ids = new Uint32Array(capacity);
    this.nums = new Float64Array(capacity);
    this.values = valueArray(capacity);
  }

  /** The first value that is not a number: the numbers before it move to values. */
  numbersToValues(upto: number): void {
    for (let i = 0; i < upto; i++) this.values[i] = this.nums[i] as number;
  }

  /** values[0, n) as an array of n (a view would be a copy: arrays have no subarray). */
  valuesOf(n: number): Value[] {
    return n === this.capacity ? this.values : this.values.slice(0, n);
  }
}
