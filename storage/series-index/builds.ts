/**
 * The background builds of the archive's per-series sidecars (store.ts): queued by seq,
 * built one at a time (build.ts), paced at STORAGE_LIMITS.seriesIndexBuildUpdatesPerS so
 * that queries and recording keep the machine. The store decides what is queued and what a
 * finished build means for reads; this runs the queue. A build that failed for want of space
 * is queued again with the next build asked for (a rotation, a file fetched back: space may
 * be back), rather than leaving its file to be read from its blocks until a restart.
 */
import { readdir, rm } from 'node:fs/promises';
import { isTapedeckError } from '../../protocol/errors.js';
import type { Archive } from '../archive.js';
import { diskFullCode } from '../disk-full.js';
import type { FileEntry } from '../file-list.js';
import { STORAGE_LIMITS } from '../limits.js';
import { Pacer } from '../pacer.js';
import { readExactly } from '../segment-file.js';
import { buildSidecar, identityOf, openSidecarFile, sidecarDir, SIDECAR_SUFFIX, TEMP_SUFFIX, type BuildResult } from './build.js';
import { currentVersion, earlierVersion, HEADER_BYTES, versionOf } from './format.js';
import type { SeriesIndexStats } from './store.js';

export class SidecarBuilds {
  private readonly queue: number[] = [];
  private running: Promise<void> | undefined;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  /** Seqs whose build failed on a full disk: queued again with the next push. */
  private readonly failedOnFullDisk = new Set<number>();
  /** Updates decoded since the pace clock started. */
  private readonly pacer = new Pacer(() => STORAGE_LIMITS.seriesIndexBuildUpdatesPerS);

  constructor(
    private readonly a: Archive,
    private readonly stats: SeriesIndexStats,
    /** Told after f's sidecar is built (seq: the seq it was queued as). */
    private readonly built: (f: FileEntry, seq: number) => Promise<void>,
  ) {}

  /** Whether seq would be queued now: builds not stopped, seq not queued already. */
  accepts(seq: number): boolean {
    return !this.stopped && !this.queue.includes(seq);
  }

  /** Queues seq (accepts(seq) said so) and starts the queue's run if none is running. */
  push(seq: number): void {
    this.queue.push(seq);
    for (const s of this.failedOnFullDisk) if (!this.queue.includes(s)) this.queue.push(s);
    this.failedOnFullDisk.clear();
    this.stats.queued = this.queue.length;
    this.running ??= this.run().finally(() => {
      this.running = undefined;
      for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** Resolves once no build is queued or running. */
  whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const seq = this.queue.shift() as number;
      this.stats.queued = this.queue.length;
      const f = this.a.fileList.bySeq(seq);
      if (!f) continue;
      try {
        // A file that is not (or no longer) sealed and local has none; its block table may be damaged (throws).
        if (!identityOf(this.a, f)) continue;
        const r: BuildResult = await buildSidecar(this.a, f, { pace: (updates) => this.pace(updates) });
        this.stats.built++;
        this.a.logger.info({ file: f.name, ...r }, 'series sidecar built');
        await this.built(f, seq);
      } catch (err) {
        this.stats.buildFailures++;
        if (diskFullCode(err) !== undefined && !this.stopped) this.failedOnFullDisk.add(seq);
        if (!this.a.isClosed) this.a.logger.warn({ file: f.name, err: isTapedeckError(err) ? err.message : String(err) }, 'series sidecar build failed: reads of this file use its blocks');
      }
    }
  }

  /** Yields after each block; sleeps when decoding ran ahead of seriesIndexBuildUpdatesPerS. */
  private async pace(updates: number): Promise<void> {
    if (this.stopped || this.a.isClosed) throw new Error('series sidecar builds stopped');
    await this.pacer.step(updates);
  }

  /** Stops builds (the one running gives up at its next block); waits for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    await this.running;
  }
}

/**
 * At start: removes temporary files (a build cut by a crash) and sidecars whose segment is
 * no longer a local sealed file; the sealed local files without a sidecar (to build). What
 * cannot be removed (a directory someone put there) is left and logged: it never stops the
 * start, and a directory at a sidecar's name is never read as one (its build fails, logged).
 */
export async function sweepSidecars(a: Archive): Promise<FileEntry[]> {
  const names = await readdir(sidecarDir(a)).catch(() => [] as string[]);
  const local = new Map<string, FileEntry>();
  for (const f of a.files) if (f.sealed && f.location === 'local') local.set(f.name, f);
  const have = new Set<string>();
  for (const n of names) {
    const segment = n.endsWith(SIDECAR_SUFFIX) ? n.slice(0, -SIDECAR_SUFFIX.length) : undefined;
    // A sidecar of another format version (written by another release) is built again now, not at its first read;
    // one whose magic or version no release wrote is damaged: said so (verify reports it too), then built again.
    const head = segment !== undefined && local.has(segment) ? await headOf(`${sidecarDir(a)}/${n}`) : undefined;
    const stale = head !== undefined && head !== 'current';
    if (head === 'damaged') a.logger.warn({ file: n, code: 'TPD_CORRUPT_BLOCK' }, 'series sidecar damaged (its magic or version): removed, it is built again');
    if (!(n.endsWith(TEMP_SUFFIX) || segment === undefined || !local.has(segment) || stale)) have.add(segment);
    else await rm(`${sidecarDir(a)}/${n}`, { force: true }).catch((err: unknown) => a.logger.warn({ file: n, err: String((err as Error).message ?? err) }, 'series-index/: could not remove what is not a sidecar of a local sealed file'));
  }
  return [...local.values()].filter((f) => !have.has(f.name) && f.firstTs !== null);
}

/**
 * What a sidecar's first bytes are: this format version's (its other checks wait for its
 * first read), an earlier release's, or damaged. Something other than a regular file (a
 * FIFO, a directory) counts as stale, as before: removed if it can be, never read.
 */
async function headOf(path: string): Promise<'current' | 'earlier' | 'damaged'> {
  const fh = await openSidecarFile(path).catch(() => undefined);
  if (!fh) return 'earlier';
  try {
    const head = await readExactly(fh, HEADER_BYTES, 0);
    return currentVersion(versionOf(head)) ? 'current' : earlierVersion(head) ? 'earlier' : 'damaged';
  } catch {
    return 'damaged';
  } finally {
    await fh.close().catch(() => undefined);
  }
}
