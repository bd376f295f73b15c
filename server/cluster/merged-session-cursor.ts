/**
 * A merged session's cursor: the storage Cursor's interface (seek, nextRaw, stateById,
 * matches, pos) over every shard of the cluster, so a playback Session
 * (server/sessions/session.ts) drives it exactly as it drives an archive: the same
 * controls, pacing, frames and close codes (docs/cluster.md, "Merged reads").
 *
 * Order: batches come by timestamp, equal timestamps by shard id, each shard in its own
 * order. The position is (ts, shard id of the last batch delivered at ts), so a seek or a
 * step lands between two batches of equal time exactly.
 *
 * Release: the next batch (t, s) goes out only when every other live shard has shown a
 * later head or has nothing more up to t: a shard's stream ended at its committed horizon,
 * and a recording shard counts as having nothing more up to max(horizon, now - commit lag)
 * (the lag after which a local session too treats a time as past: flush interval + 1 s).
 * A shard that records nothing is final. So a tailing session follows the slowest live
 * shard, and no batch arrives out of order.
 *
 * Lost shards: a shard whose stream or answer fails is dropped from the merge with an info
 * frame (TPD_SHARDS_MISSING naming it); every clusterShardRetryMs it is tried again, and
 * once it answers it is merged again from the current position (info frame).
 */
import { compileSpec, type PathMatcher } from '../../protocol/glob.js';
import { TapedeckError } from '../../protocol/errors.js';
import type { ValuelessFrame } from '../../protocol/frames.js';
import { formatTs } from '../../protocol/time.js';
import type { Value } from '../../protocol/value.js';
import type { RawBatch, SeekTarget } from '../../storage/cursor.js';
import { STORAGE_LIMITS, wallClockUs } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import type { ShardInfo } from './directory.js';
import { fanoutJson, liveShards, queryString, reasonOf, shardJson, type MissingShard } from './fanout.js';
import { isBeforeAnswer, isShardProbe } from './merge-answers.js';
import { ShardFeed } from './merged-session-feed.js';
import { mergedStateAt, type MergedPosition } from './merged-session-state.js';
import type { ShardBatch } from './shard-batches.js';
import { compareTie as cmp } from './merge-tie.js';

/** What the cursor needs of its merged source (./merged-session-source.ts). */
export interface MergedSourceView {
  readonly directory: import('./directory.js').ShardDirectory;
  /** The merged path table: a path's id, registered on first sight. */
  idOf(path: string): number;
  readonly paths: readonly string[];
  /** Flush interval + 1 s (µs): how late a recording shard may still commit a batch. */
  commitLagUs(): number;
}

/** A tie position after every shard's batch at that time. */
const AFTER_ALL = '\uffff';

type Position = MergedPosition;


export class MergedCursor {
  pos: number | null = null;
  /** Where frames for the client go (info frames about shards); set by the session's owner. */
  notify: ((frame: ValuelessFrame) => void) | undefined;
  closed = false;
  private at: Position = { ts: null, shard: '' };
  private feeds: ShardFeed[] = [];
  /** Shards lost, and when to try each again (ms). */
  private readonly lost = new Map<string, number>();
  private readonly matcher: PathMatcher | undefined;
  private match = new Uint8Array(0);
  /**
   * The session reading this cursor (bound once created). A Session closed while it awaited
   * a read does not look at `closed` before it next sleeps, and close()'s wake-up came
   * while it was not asleep: so after every read that ends on a closed session, it is woken
   * once more (after the microtasks that put it to sleep).
   */
  session: { readonly closed: boolean; wake(): void } | undefined;
  /** The time of a batch held back by a recording shard's horizon (see release), else undefined. */
  heldUs: number | undefined;
  /** Shards' horizons the last time the source polled them: a larger one reopens an ended feed. */
  private known = new Map<string, number>();
  /**
   * Live shards a tailing session's poll found outside the merge (they joined the cluster
   * after the last seek): merged from the position at the next read. A session that does
   * not tail takes them in at its next seek.
   */
  private readonly joining = new Set<string>();

  private readonly idOf = (p: string): number => this.src.idOf(p);

  constructor(private readonly src: MergedSourceView, readonly filter: readonly string[]) {
    this.matcher = filter.length > 0 ? compileSpec(filter) : undefined;
  }

  // ---------------------------------------------------------------- seeking

  async seek(target: SeekTarget): Promise<void> {
    try {
      await this.seekTo(target);
    } finally {
      this.settled();
    }
  }

  private settled(): void {
    const s = this.session;
    if (s?.closed) setImmediate(() => s.wake());
  }

  private async seekTo(target: SeekTarget): Promise<void> {
    if (target === 'beginning') return this.moveTo({ ts: null, shard: '' });
    if (target === 'end') return this.moveTo(await this.endPosition());
    if ('ts' in target) {
      if (!Number.isFinite(target.ts)) throw new TapedeckError('TPD_BAD_ARGUMENT', `seek time must be a number of microseconds, got ${String(target.ts)}`);
      return this.moveTo({ ts: target.ts, shard: AFTER_ALL });
    }
    const n = target.batches;
    if (!Number.isInteger(n) || Math.abs(n) > STORAGE_LIMITS.seekBatchesMax) {
      throw new TapedeckError('TPD_BAD_ARGUMENT', `seek by batches takes an integer within ±${STORAGE_LIMITS.seekBatchesMax}, got ${String(n)}`);
    }
    if (n > 0) for (let i = 0; i < n && (await this.next()) !== null; i++);
    else if (n < 0) await this.stepBack(-n);
  }

  /** Every live shard's feed from `p` on (a shard after p.shard still owes its batch at p.ts). */
  private async moveTo(p: Position): Promise<void> {
    this.release();
    this.joining.clear();
    this.at = p;
    this.pos = p.ts;
    const { live, missing } = await liveShards(this.src.directory);
    this.feeds = live.map(({ shard }) => new ShardFeed(this.src.directory, shard, this.fromFor(shard.id), this.filter, this.idOf));
    for (const m of missing) this.lose(m);
  }

  private fromFor(shard: string): number {
    const { ts, shard: s } = this.at;
    if (ts === null) return 0;
    return shard <= s ? ts + 1 : ts;
  }

  /**
   * The end of the merged record: the slowest recording shard's horizon (see release), or
   * when no live shard records, the newest batch of any.
   */
  private async endPosition(): Promise<Position> {
    const { live, missing } = await liveShards(this.src.directory);
    for (const m of missing) this.lose(m);
    const probes = await Promise.all(live.map(async ({ shard }) => {
      try {
        const p = await shardJson(this.src.directory, shard, '/api/v1/shard', isShardProbe, { bytesMax: SERVER_LIMITS.clusterShardProbeBytesMax });
        return { shard, ...p.value };
      } catch (err) {
        this.lose({ shard: shard.id, reason: reasonOf(err) });
        return undefined;
      }
    }));
    let recordingMin: number | undefined;
    let newest: number | null = null;
    for (const p of probes) {
      if (!p) continue;
      if (p.horizon_us !== null && (newest === null || p.horizon_us > newest)) newest = p.horizon_us;
      if (p.recording) recordingMin = Math.min(recordingMin ?? Infinity, this.releasedUpTo(p.horizon_us));
    }
    const ts = recordingMin ?? newest;
    return { ts: ts === null ? null : ts, shard: AFTER_ALL };
  }

  /** Up to where a recording shard whose committed horizon is `h` will add nothing. */
  private releasedUpTo(h: number | null): number {
    return Math.max(h ?? 0, wallClockUs() - this.src.commitLagUs());
  }

  /**
   * Back `n` batches in merged order: each shard says its newest batches at or before the
   * position (GET /api/v1/shard/before); the (n+1)-th newest of them all is the new position.
   */
  private async stepBack(n: number): Promise<void> {
    const { ts, shard } = this.at;
    if (ts === null) return;
    const ask = Math.min(n + 1, STORAGE_LIMITS.seekBatchesMax);
    const f = await fanoutJson(this.src.directory, '/api/v1/shard/before' + queryString({ ts, n: ask, glob: this.filter.length > 0 ? this.filter : undefined }), isBeforeAnswer);
    for (const m of f.missing) this.lose(m);
    const all: Position[] = [];
    for (const a of f.answers) {
      const list = a.value.before === null ? a.value.ts : [...a.value.ts, a.value.before];
      for (const t of list) if (cmp(t, a.shard.id, ts, shard) <= 0) all.push({ ts: t, shard: a.shard.id });
    }
    all.sort((x, y) => cmp(y.ts as number, y.shard, x.ts as number, x.shard));
    await this.moveTo(all[n] ?? { ts: null, shard: '' });
  }

  // ---------------------------------------------------------------- reading

  /** The next batch in merged order, or null when none can go out yet (end, or waiting on a shard). */
  async nextRaw(): Promise<RawBatch | null> {
    try {
      return await this.next();
    } finally {
      this.settled();
    }
  }

  private async next(): Promise<RawBatch | null> {
    if (this.lost.size > 0) await this.retryLost();
    if (this.joining.size > 0) await this.join();
    for (;;) {
      const need = this.unready();
      if (need) {
        await this.read(need);
        continue;
      }
      let next: ShardFeed | undefined;
      for (const f of this.feeds) if (f.head && (!next || cmp(f.head.ts, f.shard.id, (next.head as ShardBatch).ts, next.shard.id) < 0)) next = f;
      this.heldUs = undefined;
      if (!next) return null;
      const t = (next.head as ShardBatch).ts;
      // Held back: a shard with nothing read yet may still record a batch before it.
      for (const f of this.feeds) {
        if (!f.head && f.recording && this.releasedUpTo(f.horizonUs) < t) {
          this.heldUs = t;
          return null;
        }
      }
      const b = next.take();
      if (this.at.ts !== null && cmp(b.ts, next.shard.id, this.at.ts, this.at.shard) <= 0) continue; // already played (a shard back from a loss)
      this.at = { ts: b.ts, shard: next.shard.id };
      this.pos = b.ts;
      return b;
    }
  }

  /**
   * The feeds that must read their socket before the merge can choose, undefined when none
   * (the usual case: every next batch was already received, so no promise is made). An
   * ended feed whose shard's horizon moved reads again; a feed whose bytes are malformed is
   * lost.
   */
  private unready(): ShardFeed[] | undefined {
    let need: ShardFeed[] | undefined;
    let failed: MissingShard[] | undefined;
    for (const f of this.feeds) {
      if (f.exhausted) {
        const h = this.known.get(f.shard.id);
        if (h !== undefined && h > (f.horizonUs ?? 0)) f.reopen();
      }
      try {
        if (!f.ready()) (need ??= []).push(f);
      } catch (err) {
        if (err instanceof TapedeckError && err.status < 500) throw err;
        (failed ??= []).push({ shard: f.shard.id, reason: reasonOf(err) });
      }
    }
    if (failed) for (const m of failed) this.lose(m);
    return need;
  }

  /** Reads the next batch of each feed in `need` at once; a shard that fails is lost. */
  private async read(need: readonly ShardFeed[]): Promise<void> {
    const failed = await Promise.all(need.map(async (f) => {
      try {
        await f.peek();
        return undefined;
      } catch (err) {
        if (err instanceof TapedeckError && err.status < 500) throw err;
        return { shard: f.shard.id, reason: reasonOf(err) };
      }
    }));
    for (const m of failed) if (m) this.lose(m);
  }

  /**
   * The shards' committed horizons as last polled (the source's tail poll): true when a
   * read may now make progress (a horizon moved past an ended feed, a held batch's time
   * passed the commit lag, a lost shard may be back).
   */
  horizonsPolled(shards: readonly ShardInfo[]): boolean {
    let moved = this.heldUs !== undefined && this.heldUs <= wallClockUs() - this.src.commitLagUs();
    for (const s of shards) {
      if (!s.live) continue;
      const before = this.known.get(s.id);
      if (before === undefined || s.horizonUs > before) {
        this.known.set(s.id, s.horizonUs);
        const f = this.feeds.find((x) => x.shard.id === s.id);
        if (f?.exhausted && s.horizonUs > (f.horizonUs ?? 0)) moved = true;
      }
      if (this.lost.has(s.id)) moved = true;
      else if (!this.feeds.some((f) => f.shard.id === s.id)) {
        this.joining.add(s.id);
        moved = true;
      }
    }
    return moved;
  }

  // ---------------------------------------------------------------- lost shards

  private lose(m: MissingShard): void {
    const i = this.feeds.findIndex((f) => f.shard.id === m.shard);
    if (i >= 0) (this.feeds.splice(i, 1)[0] as ShardFeed).release();
    if (this.lost.has(m.shard)) return;
    this.lost.set(m.shard, Date.now() + SERVER_LIMITS.clusterShardRetryMs);
    this.notify?.({ type: 'info', code: 'TPD_SHARDS_MISSING', message: `shard ${m.shard} is missing (${m.reason}); playback goes on without it` });
  }

  /**
   * Tells a client that just attached which shards are lost now: one lost before any
   * client was there (at creation, or while detached) was told to nobody.
   */
  announceLost(): void {
    for (const id of this.lost.keys()) this.notify?.({ type: 'info', code: 'TPD_SHARDS_MISSING', message: `shard ${id} is missing; playback goes on without it` });
  }

  /** Lost shards whose retry time came and that are live again join from the position. */
  private async retryLost(): Promise<void> {
    if (this.lost.size === 0) return;
    const now = Date.now();
    if (![...this.lost.values()].some((t) => t <= now)) return;
    const { live } = await liveShards(this.src.directory);
    for (const { shard } of live) {
      const due = this.lost.get(shard.id);
      if (due === undefined || due > now) continue;
      const f = new ShardFeed(this.src.directory, shard, this.fromFor(shard.id), this.filter, this.idOf);
      try {
        await f.peek();
      } catch {
        f.release();
        this.lost.set(shard.id, now + SERVER_LIMITS.clusterShardRetryMs);
        continue;
      }
      this.lost.delete(shard.id);
      this.feeds.push(f);
      this.notify?.({ type: 'info', code: 'TPD_SHARDS_MISSING', message: `shard ${shard.id} is back; playback includes it again from ${this.at.ts === null ? 'the beginning' : formatTs(this.at.ts)}` });
    }
    for (const [id, due] of this.lost) if (due <= now) this.lost.set(id, now + SERVER_LIMITS.clusterShardRetryMs);
  }

  /** Shards that joined the cluster while the session tailed: merged from the position (their batches before it are not played). */
  private async join(): Promise<void> {
    const ids = new Set(this.joining);
    this.joining.clear();
    let live: Awaited<ReturnType<typeof liveShards>>['live'];
    try {
      ({ live } = await liveShards(this.src.directory));
    } catch {
      return; // membership unreadable: the next poll finds them again
    }
    for (const { shard } of live) {
      if (!ids.has(shard.id) || this.lost.has(shard.id) || this.feeds.some((f) => f.shard.id === shard.id)) continue;
      this.feeds.push(new ShardFeed(this.src.directory, shard, this.fromFor(shard.id), this.filter, this.idOf));
    }
  }

  /** Names of the shards lost now. */
  get missing(): string[] {
    return [...this.lost.keys()].sort();
  }

  // ---------------------------------------------------------------- state

  /** The merged state at the position, keyed by merged path id (./merged-session-state.ts). */
  async stateById(): Promise<Map<number, Value>> {
    try {
      return await mergedStateAt(this.src.directory, this.filter, this.at, this.idOf, (m) => this.lose(m));
    } finally {
      this.settled();
    }
  }

  matches(id: number): boolean {
    if (!this.matcher) return true;
    if (id >= this.match.length) {
      const next = new Uint8Array(Math.max(id + 1, this.src.paths.length));
      next.set(this.match);
      this.match = next;
    }
    let m = this.match[id] as number;
    if (m === 0) {
      m = this.matcher(this.src.paths[id] as string) ? 1 : 2;
      this.match[id] = m;
    }
    return m === 1;
  }

  // ---------------------------------------------------------------- resources

  /** Closes every shard stream (they reopen from the position on the next read). */
  release(): void {
    for (const f of this.feeds) f.release();
  }

  close(): void {
    this.closed = true;
    this.release();
    this.feeds = [];
  }
}
