/**
 * Compaction by the running server (the second stage of the one-copy layout; the first is
 * `tapedeck compact`, storage/compact-archive.ts). Each file a rotation seals, and at start
 * each sealed local file not yet compact, is compacted in the background (seal-compact.ts,
 * paced to compactUpdatesPerS) and swapped in under the archive's live readers:
 *
 * - The compaction is written and synced beside the file (`<name>.compact.tmp`) while
 *   readers go on reading the file as recorded.
 * - The swap runs through the read gate (read-gate.ts): only while no read operation that
 *   holds places is in flight (cursors, series reads, diff passes). It forgets the file's
 *   catalog rows, renames the compaction over the file, syncs the directory, records the new
 *   rows, and gives the file entry its next generation with the new block table and the map
 *   from old places to new (file-list.ts PlaceMap). Cursors map their place at their next
 *   operation; decoded blocks, series caches and sidecars are keyed by generation; the old
 *   file's handle is closed once no read uses it (it holds the old inode).
 * - A swap that finds reads in flight past the gate's limits is tried again
 *   (compactSwapRetryMs, at most compactSwapTriesMax times); then the compaction is thrown
 *   away and the file stays as recorded (counted).
 *
 * A kill at any instant leaves either file whole, as `tapedeck compact` does: before the
 * rename the old file and its rows (or no rows: the next open indexes it from its header);
 * after it the new file, indexed the same way. Leftover `.compact.tmp` files are removed at
 * start.
 *
 * What waits for a file to settle (compacted, declined, skipped or given up): its put (cold
 * storage ships the final bytes, cold-put.ts) and its per-series sidecar build (the server's
 * wiring builds it once settled, server/series-index.ts), through Archive.settling.
 * Skipped as by `tapedeck compact`: the open file, damaged files, files whose put has
 * started, files already compact, files declined before (compactKeptBytesRatioMax).
 */
import { EventEmitter } from 'node:events';
import { open, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isTapedeckError, TapedeckError } from '../protocol/errors.js';
import type { Archive, FileSettling } from './archive.js';
import { decodeHeader, HEADER_BYTES, headerReservedProblems } from './codec/header.js';
import { checkedPayload } from './checked-frame.js';
import { COMPACT_TMP_SUFFIX, markDeclined, skipReason, swapInCompaction } from './compact-archive.js';
import { STORAGE_LIMITS } from './limits.js';
import { Pacer } from './pacer.js';
import { compactSealedFile, type CompactedFile, type CompactTargets } from './seal-compact.js';

export interface LiveCompactOptions {
  targets?: Partial<CompactTargets>;
  /** STORAGE_LIMITS.compactKeptBytesRatioMax by default. */
  keptBytesRatioMax?: number;
  /** Updates compacted a second at most (STORAGE_LIMITS.compactUpdatesPerS by default; tests pass Infinity). */
  updatesPerS?: number;
  /** The read gate's waits for a swap (STORAGE_LIMITS.gateIdleWaitMs, gateDrainWaitMs by default). */
  gate?: { idleWaitMs: number; drainWaitMs: number };
  /** Between swap attempts (STORAGE_LIMITS.compactSwapRetryMs by default). */
  swapRetryMs?: number;
  /** Called once the compaction is written and synced, before it is read back (tests damage it here). */
  onWritten?: (tmpPath: string) => Promise<void>;
}

/** What became of a file, as the `settled` event tells it. */
export interface CompactOutcome {
  seq: number;
  name: string;
  result: 'compacted' | 'skipped' | 'declined' | 'gave up' | 'failed';
  before: number;
  after: number;
  why?: string;
}

export interface LiveCompactStats {
  compacted: number;
  declined: number;
  skipped: number;
  failed: number;
  gaveUp: number;
  /** Swap attempts that found reads in flight past the gate's limits. */
  swapRetries: number;
  bytesBefore: number;
  bytesAfter: number;
  queued: number;
}

export class LiveCompactor extends EventEmitter implements FileSettling {
  readonly stats: LiveCompactStats = { compacted: 0, declined: 0, skipped: 0, failed: 0, gaveUp: 0, swapRetries: 0, bytesBefore: 0, bytesAfter: 0, queued: 0 };
  private readonly queue: number[] = [];
  private readonly waiting = new Map<number, Array<() => void>>();
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly pacer = new Pacer(() => this.opts.updatesPerS ?? STORAGE_LIMITS.compactUpdatesPerS);
  private readonly onRotate = (e: { seq: number }): void => this.enqueue(e.seq);

  constructor(
    private readonly a: Archive,
    private readonly opts: LiveCompactOptions = {},
  ) {
    super();
  }

  /** Starts: removes leftover compactions, queues every sealed local file not yet compact, then each file a rotation seals. */
  async start(): Promise<void> {
    this.a.settling = this;
    for (const name of await readdir(this.a.dir)) if (name.endsWith(COMPACT_TMP_SUFFIX)) await rm(join(this.a.dir, name), { force: true });
    // The put rows read once (an archive of many files has as many rows).
    const shipped = this.shippedNames();
    for (const f of this.a.files) if (f.sealed && f.location === 'local' && this.reason(f.seq, shipped) === undefined) this.enqueue(f.seq);
    this.a.on('rotate', this.onRotate);
    this.a.once('close', () => void this.stop());
  }

  /** No more compactions; the one running stops at its next block (its temporary file removed). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.a.off('rotate', this.onRotate);
    this.queue.length = 0;
    await this.running;
    for (const seq of [...this.waiting.keys()]) this.settle(seq);
    if (this.a.settling === this) this.a.settling = undefined;
  }

  pending(seq: number): boolean {
    return this.waiting.has(seq);
  }

  settled(seq: number): Promise<void> {
    const w = this.waiting.get(seq);
    if (w === undefined) return Promise.resolve();
    return new Promise((resolve) => w.push(resolve));
  }

  /** Resolves once nothing is queued or running (tests, benchmarks). */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Queues file `seq` (a rotation sealed it). Past compactQueueMax it waits for the next start. */
  enqueue(seq: number): void {
    if (this.stopped || this.waiting.has(seq)) return;
    if (this.queue.length >= STORAGE_LIMITS.compactQueueMax) {
      this.a.logger.warn({ seq, compactQueueMax: STORAGE_LIMITS.compactQueueMax }, 'compaction queue full: the file is compacted after the next start');
      return;
    }
    this.waiting.set(seq, []);
    this.queue.push(seq);
    this.stats.queued = this.queue.length;
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  private settle(seq: number): void {
    const w = this.waiting.get(seq);
    this.waiting.delete(seq);
    for (const resolve of w ?? []) resolve();
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const seq = this.queue.shift() as number;
      this.stats.queued = this.queue.length;
      let outcome: CompactOutcome | undefined;
      try {
        outcome = await this.one(seq);
      } catch (err) {
        const f = this.a.fileList.bySeq(seq);
        const why = isTapedeckError(err) ? `${err.code}: ${err.message}` : String((err as Error).message ?? err);
        outcome = { seq, name: f?.name ?? String(seq), result: 'failed', before: 0, after: 0, why };
        if (!this.stopped && !this.a.isClosed) this.a.logger.warn({ file: outcome.name, err: why }, 'compaction failed: the file stays as recorded');
      }
      if (outcome !== undefined) {
        this.count(outcome);
        this.settle(seq);
        this.emit('settled', outcome);
      } else {
        this.settle(seq);
      }
    }
  }

  private count(o: CompactOutcome): void {
    if (o.result === 'compacted') {
      this.stats.compacted++;
      this.stats.bytesBefore += o.before;
      this.stats.bytesAfter += o.after;
    } else if (o.result === 'declined') this.stats.declined++;
    else if (o.result === 'skipped') this.stats.skipped++;
    else if (o.result === 'gave up') this.stats.gaveUp++;
    else this.stats.failed++;
  }

  private shippedNames(): Set<string> {
    return new Set(this.a.catalog.puts().map((p) => p.name));
  }

  private reason(seq: number, shipped = this.shippedNames()): string | undefined {
    const f = this.a.fileList.bySeq(seq);
    if (f === undefined) return 'gone';
    return skipReason(this.a, f, shipped, this.opts.targets?.updates ?? STORAGE_LIMITS.compactBlockUpdatesTarget);
  }

  /** Compacts and swaps in file seq; undefined when stopped meanwhile. */
  private async one(seq: number): Promise<CompactOutcome | undefined> {
    const e = this.a.fileList.bySeq(seq);
    const name = e?.name ?? String(seq);
    const skipped = this.reason(seq);
    if (e === undefined || skipped !== undefined) return { seq, name, result: 'skipped', before: e?.committedBytes ?? 0, after: e?.committedBytes ?? 0, why: skipped ?? 'gone' };
    const before = e.committedBytes;
    const tmp = join(this.a.dir, e.name + COMPACT_TMP_SUFFIX);
    let c: CompactedFile;
    try {
      c = await compactSealedFile(this.a, e, tmp, this.opts.targets, (updates) => this.pace(updates));
    } catch (err) {
      await rm(tmp, { force: true });
      if (this.stopped) return undefined;
      throw err;
    }
    if (c.bytes > before * (this.opts.keptBytesRatioMax ?? STORAGE_LIMITS.compactKeptBytesRatioMax)) {
      await rm(tmp, { force: true });
      markDeclined(this.a, e.name, c.bytes);
      return { seq, name, result: 'declined', before, after: before, why: `saves too little (${c.bytes} bytes)` };
    }
    try {
      await this.opts.onWritten?.(tmp);
      await readBack(tmp, c);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const gate = this.opts.gate ?? { idleWaitMs: STORAGE_LIMITS.gateIdleWaitMs, drainWaitMs: STORAGE_LIMITS.gateDrainWaitMs };
    for (let attempt = 1; ; attempt++) {
      if (this.stopped || this.a.isClosed) {
        await rm(tmp, { force: true });
        return undefined;
      }
      // Checked again: a put may have started, an eviction run, while the compaction was written.
      const now = this.reason(seq);
      if (now !== undefined) {
        await rm(tmp, { force: true });
        return { seq, name, result: 'skipped', before, after: before, why: now };
      }
      try {
        if (await this.a.gate.exclusive(() => this.swap(seq, tmp, c), gate)) break;
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      this.stats.swapRetries++;
      if (attempt >= STORAGE_LIMITS.compactSwapTriesMax) {
        await rm(tmp, { force: true });
        this.a.logger.warn({ file: name, tries: attempt }, 'compaction not swapped in: reads were always in flight; the file stays as recorded');
        return { seq, name, result: 'gave up', before, after: before, why: `reads in flight at ${attempt} tries` };
      }
      await new Promise((resolve) => setTimeout(resolve, this.opts.swapRetryMs ?? STORAGE_LIMITS.compactSwapRetryMs));
    }
    this.a.logger.info({ file: name, before, after: c.bytes, deltasBefore: c.deltasBefore, deltasAfter: c.deltasAfter }, 'file compacted');
    return { seq, name, result: 'compacted', before, after: c.bytes };
  }

  /**
   * The swap, with no read operation in flight. Once the rename is done the file on disk is
   * the compaction, so the entry takes it whatever fails after (the catalog's rows are
   * rebuilt from the file at the next open when they could not be written).
   */
  private async swap(seq: number, tmp: string, c: CompactedFile): Promise<void> {
    const e = this.a.fileList.bySeq(seq);
    if (e === undefined) throw new Error(`file seq ${seq} left the archive before its compaction was swapped in`);
    await swapInCompaction(this.a, e, tmp, c, () => {
      const di = Uint32Array.from(c.deltaStarts, (p) => p.di);
      const k = Uint32Array.from(c.deltaStarts, (p) => p.k);
      this.a.replaceFile(seq, c.bytes, c.rows, { di, k });
      this.emit('replaced', { seq, name: e.name });
    });
  }

  /** Sleeps when compaction ran ahead of its rate; yields to the event loop after each block. */
  private async pace(updates: number): Promise<void> {
    if (this.stopped || this.a.isClosed) throw new Error('compaction stopped');
    await this.pacer.step(updates);
  }
}

/**
 * The compaction as it lies on disk, checked before it may replace the file: its length, its
 * header and commit slot, and every frame (length, CRC32C, header against its new row), as
 * every read will check them. Damage written by the disk or the kernel is caught here,
 * while the file as recorded is still whole: the compaction is thrown away instead.
 */
async function readBack(tmp: string, c: CompactedFile): Promise<void> {
  const fh = await open(tmp, 'r');
  try {
    const where = basename(tmp);
    if ((await fh.stat()).size !== c.bytes) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: ${c.bytes} bytes written, another length read back`);
    const head = new Uint8Array(HEADER_BYTES);
    if ((await fh.read(head, 0, HEADER_BYTES, 0)).bytesRead !== HEADER_BYTES) throw new TapedeckError('TPD_CORRUPT_HEADER', `${where}: its header cannot be read back`);
    const h = decodeHeader(head);
    // Every byte of the header: what no CRC32C covers (reserved bytes, slot padding) must be zero, slot B empty.
    const reserved = headerReservedProblems(head);
    if (reserved.length > 0) throw new TapedeckError('TPD_CORRUPT_HEADER', `${where}: ${reserved.join('; ')}`);
    if (h.slots[0] !== 'valid' || h.slots[1] !== 'empty' || h.commit.committedBytes !== c.bytes) throw new TapedeckError('TPD_CORRUPT_HEADER', `${where}: its commit slot does not hold its length`);
    for (const row of c.rows) {
      const frame = new Uint8Array(row.frameBytes);
      if ((await fh.read(frame, 0, row.frameBytes, row.offset)).bytesRead !== row.frameBytes) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where} block at ${row.offset}: the file ends inside the block`);
      checkedPayload(frame, row, `${where} block at ${row.offset}`);
    }
  } finally {
    await fh.close();
  }
}
