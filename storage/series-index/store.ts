/**
 * The archive's per-series sidecars (format.ts): which are usable, read through them, and
 * the background builds. A sidecar is used only after its header matches the segment as the
 * archive knows it and its index passes its CRC32C; each chunk is checked again (CRC32C,
 * count, times) when read. Anything that fails is never used: the sidecar is dropped,
 * deleted (when the archive is writable) and built again, and the read falls back to the
 * segment's blocks.
 *
 * Builds run one at a time, in the background (builds.ts): a file sealed by a rotation, sealed files
 * found at start without a sidecar, and a file a read found without one (a file fetched back
 * from cold storage builds its sidecar when fetched). They are paced at
 * STORAGE_LIMITS.seriesIndexBuildUpdatesPerS so that queries and recording keep the machine.
 */
import { rm } from 'node:fs/promises';
import { isTapedeckError } from '../../protocol/errors.js';
import type { Archive } from '../archive.js';
import type { FileEntry } from '../file-list.js';
import { STORAGE_LIMITS } from '../limits.js';
import { readExactly } from '../segment-file.js';
import { EMPTY_RUN, type ChunkRun, type SeriesCache, type SeriesRun } from '../series-cache.js';
import { identityOf, openSidecarFile, sidecarPath } from './build.js';
import { SidecarBuilds, sweepSidecars } from './builds.js';
import { decodeChunk } from './chunk.js';
import { decodeRefChunk } from './chunk-refs.js';
import { decodeHeader, decodeIndex, findPath, FLAG_NOT_COVERED, HEADER_BYTES, type SidecarIndex } from './format.js';
import { chunkRefs } from './index-refs.js';
import { withRefRuns, type PendingChunk } from './refs-read.js';

/** A usable sidecar: its verified index, and its chunk bytes once a wide read asked for them (held). */
interface Open {
  seq: number;
  name: string;
  /** The generation of the segment it describes (FileEntry.gen: a compaction makes another). */
  gen: number;
  index: SidecarIndex;
  /** Where the chunks end (the index's offset): bytes [0, chunkEnd) hold the header and every chunk. */
  chunkEnd: number;
  /** Bytes [0, chunkEnd) of the file, read in one I/O (at most seriesIndexHeldBytesMax held in all). */
  held?: Uint8Array;
  /** Chunk bytes read from the file so far (while not held). */
  readBytes: number;
}

/** A chunk to read: where it is, and which path's run it becomes. */
interface Wanted {
  id: number;
  at: number;
}

/** What a read through a sidecar gave: each covered path's chunks in range, and the paths it does not cover. */
export interface SidecarRead {
  runs: Array<{ id: number; run: SeriesRun }>;
  notCovered: number[];
}

export interface SeriesIndexStats {
  built: number;
  buildFailures: number;
  damaged: number;
  reads: number;
  fallbacks: number;
  queued: number;
}

export class SeriesIndexStore {
  /** Verified indexes by seq, least recently used first (at most seriesIndexOpenMax). */
  private readonly opened = new Map<number, Open>();
  /** Sidecars whose chunk bytes are held, least recently read first, and their bytes in all. */
  private readonly held = new Map<number, Open>();
  private heldBytes = 0;
  /** Seqs with no usable sidecar now (missing, damaged, or being built): not looked for again until built. */
  private readonly absent = new Set<number>();
  /** Sidecars being opened, by seq. */
  private readonly loading = new Map<number, Promise<Open | undefined>>();
  readonly stats: SeriesIndexStats = { built: 0, buildFailures: 0, damaged: 0, reads: 0, fallbacks: 0, queued: 0 };
  /** Set by whoever starts builds (server/series-index.ts); reads never build on a read-only archive. */
  buildsEnabled = false;
  private readonly builds: SidecarBuilds;

  constructor(private readonly a: Archive) {
    this.builds = new SidecarBuilds(a, this.stats, (f, seq) => this.built(f, seq));
  }

  // ---------------------------------------------------------------- reads

  /** The verified index of f's sidecar, or undefined (then a build is asked for). */
  async indexOf(f: FileEntry): Promise<Open | undefined> {
    const held = this.opened.get(f.seq);
    if (held && held.name === f.name && held.gen === f.gen) {
      this.opened.delete(f.seq);
      this.opened.set(f.seq, held);
      return held;
    }
    if (this.absent.has(f.seq)) return undefined;
    // One load of a sidecar at a time: a read arriving while it loads (the server's
    // preparation at start, another query) waits for it instead of decoding it again.
    let loading = this.loading.get(f.seq);
    if (!loading) {
      loading = this.load(f).finally(() => this.loading.delete(f.seq));
      this.loading.set(f.seq, loading);
    }
    const o = await loading;
    return o?.name === f.name && o.gen === f.gen ? o : undefined;
  }

  /** Opens and verifies f's sidecar (indexOf's work). */
  private async load(f: FileEntry): Promise<Open | undefined> {
    const id = identityOf(this.a, f);
    if (!id) return undefined;
    let fh;
    try {
      fh = await openSidecarFile(sidecarPath(this.a, f.name));
    } catch (err) {
      // Something other than a regular file (a directory, a FIFO) is a damaged sidecar; nothing there, a missing one.
      if (isTapedeckError(err)) await this.damaged(f, err);
      else this.want(f);
      return undefined;
    }
    try {
      const size = (await fh.stat()).size;
      const h = decodeHeader(await readExactly(fh, HEADER_BYTES, 0), id, size);
      const index = decodeIndex(await readExactly(fh, h.indexBytes, h.indexOffset), h);
      const o: Open = { seq: f.seq, name: f.name, gen: f.gen, index, chunkEnd: h.indexOffset, readBytes: 0 };
      this.opened.set(f.seq, o);
      while (this.opened.size > STORAGE_LIMITS.seriesIndexOpenMax) this.forget(this.opened.keys().next().value as number);
      return o;
    } catch (err) {
      await this.damaged(f, err);
      return undefined;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * Holds f's chunk bytes now (one read), as a wide read would, when its sidecar is usable and
   * they fit seriesIndexHeldBytesMax: the query API's warm-up at start (server/promql/prepare.ts),
   * so that a series' first read slices memory. Whether they are held.
   */
  async hold(f: FileEntry): Promise<boolean> {
    const o = await this.indexOf(f);
    if (!o || o.chunkEnd > STORAGE_LIMITS.seriesIndexHeldBytesMax) return false;
    o.readBytes = Math.max(o.readBytes, Math.ceil(o.chunkEnd / HOLD_READ_FRACTION));
    return (await this.heldBytesOf(f, o, [])) !== undefined;
  }

  /**
   * The samples of `ids` in [fromUs, toUs] within f, through its sidecar; undefined when it
   * has none usable (the caller reads the blocks). Chunk runs are cached in `cache`.
   */
  async read(f: FileEntry, ids: readonly number[], fromUs: number, toUs: number, cache: SeriesCache, useCache = true): Promise<SidecarRead | undefined> {
    const o = await this.indexOf(f);
    // A version-5 sidecar's values are in its segment: one not on the local disk is read from its blocks.
    if (!o || (o.index.refs && f.location !== 'local')) return undefined;
    const ix = o.index;
    const notCovered: number[] = [];
    const wanted: Wanted[] = [];
    let samples = 0;
    for (const id of ids) {
      const p = findPath(ix, id);
      if (p < 0) continue;
      if ((ix.flags[p] as number) & FLAG_NOT_COVERED) {
        notCovered.push(id);
        continue;
      }
      for (let c = ix.chunkStart[p] as number; c < (ix.chunkStart[p + 1] as number); c++) {
        if ((ix.last[c] as number) < fromUs || (ix.first[c] as number) > toUs) continue;
        wanted.push({ id, at: c });
        samples += ix.n[c] as number;
      }
    }
    this.stats.reads++;
    // A read larger than a quarter of the cache would only push out what others reuse (and
    // pay for it per chunk): it decodes its chunks without the cache.
    const cached = useCache && samples * 16 <= cache.bytesMax / 4;
    const runs: Array<{ id: number; run: SeriesRun }> = [];
    const missing: Wanted[] = [];
    for (const w of wanted) {
      const hit = cached ? cache.get(cacheKey(o, ix, w.at, w.id)) : undefined;
      if (!hit) missing.push(w);
      runs.push({ id: w.id, run: hit?.run ?? EMPTY_RUN });
    }
    if (missing.length > 0) {
      let decoded: Map<number, SeriesRun>;
      try {
        decoded = await this.readChunks(f, o, missing);
      } catch (err) {
        await this.damaged(f, err);
        this.stats.fallbacks++;
        return undefined;
      }
      for (let i = 0; i < wanted.length; i++) {
        const w = wanted[i] as Wanted;
        const run = decoded.get(w.at);
        if (!run) continue;
        if (cached) cache.put(cacheKey(o, ix, w.at, w.id), { run, blocks: 0 } satisfies ChunkRun);
        (runs[i] as { run: SeriesRun }).run = run;
      }
    }
    return { runs, notCovered };
  }

  /**
   * Reads and checks the chunks: sliced from the sidecar's held bytes when a wide read made
   * them held, else nearby ones in one read of at most seriesIndexReadSpanBytesMax.
   */
  private async readChunks(f: FileEntry, o: Open, wanted: Wanted[]): Promise<Map<number, SeriesRun>> {
    const ix = o.index;
    const sorted = [...wanted].sort((x, y) => (ix.offset[x.at] as number) - (ix.offset[y.at] as number));
    const out = new Map<number, SeriesRun>();
    const pending: PendingChunk[] = [];
    // A chunk's bytes: decoded (version 4), or opened to read its bodies after (version 5).
    const take = (buf: Uint8Array, c: number, id: number): void => {
      const place = { id, slice: ix.slice[c] as number };
      const n = ix.n[c] as number;
      if (ix.refs) {
        pending.push({ at: c, place, chunk: decodeRefChunk(buf, n, ix.first[c] as number, ix.last[c] as number, place, chunkRefs(ix.refs, c)) });
        return;
      }
      const d = decodeChunk(buf, n, ix.first[c] as number, ix.last[c] as number, place);
      out.set(c, { n: d.n, ts: d.ts, num: d.num, values: d.values });
    };
    const held = await this.heldBytesOf(f, o, sorted);
    if (held) {
      for (const w of sorted) {
        const off = ix.offset[w.at] as number;
        take(held.subarray(off, off + (ix.bytes[w.at] as number)), w.at, w.id);
      }
      return withRefRuns(this.a, f, out, pending);
    }
    const fh = await openSidecarFile(sidecarPath(this.a, f.name));
    try {
      for (let i = 0; i < sorted.length; ) {
        const startAt = ix.offset[(sorted[i] as Wanted).at] as number;
        let j = i;
        let end = startAt;
        while (j < sorted.length) {
          const c = (sorted[j] as Wanted).at;
          const off = ix.offset[c] as number;
          const stop = off + (ix.bytes[c] as number);
          if (j > i && (off - end > STORAGE_LIMITS.seriesIndexReadGapBytes || stop - startAt > STORAGE_LIMITS.seriesIndexReadSpanBytesMax)) break;
          end = Math.max(end, stop);
          j++;
        }
        const buf = await readExactly(fh, end - startAt, startAt);
        if (buf.length !== end - startAt) throw new Error('sidecar ends inside a chunk');
        for (; i < j; i++) {
          const { at: c, id } = sorted[i] as Wanted;
          const off = (ix.offset[c] as number) - startAt;
          take(buf.subarray(off, off + (ix.bytes[c] as number)), c, id);
        }
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
    return withRefRuns(this.a, f, out, pending);
  }

  /**
   * The sidecar's chunk bytes, held: read whole (one I/O) once reads have asked for
   * 1/HOLD_READ_FRACTION of them (a wide query, read in batches, gets there within its first
   * batches; a dashboard's few series, after many refreshes) and they fit
   * seriesIndexHeldBytesMax (the least recently read let go); undefined before (the caller
   * reads its spans).
   */
  private async heldBytesOf(f: FileEntry, o: Open, sorted: readonly Wanted[]): Promise<Uint8Array | undefined> {
    this.trimHeld();
    if (o.held) {
      this.held.delete(o.seq);
      this.held.set(o.seq, o);
      return o.held;
    }
    if (o.chunkEnd > STORAGE_LIMITS.seriesIndexHeldBytesMax) return undefined;
    for (const w of sorted) o.readBytes += o.index.bytes[w.at] as number;
    if (o.readBytes * HOLD_READ_FRACTION < o.chunkEnd) return undefined;
    const fh = await openSidecarFile(sidecarPath(this.a, f.name));
    let buf: Uint8Array;
    try {
      buf = await readExactly(fh, o.chunkEnd, 0);
    } finally {
      await fh.close().catch(() => undefined);
    }
    if (buf.length !== o.chunkEnd) throw new Error('sidecar ends inside its chunks');
    // Another read held them meanwhile, or the sidecar was let go (damaged, removed): not held twice.
    if (o.held || this.opened.get(o.seq) !== o) return o.held ?? buf;
    o.held = buf;
    this.held.set(o.seq, o);
    this.heldBytes += buf.length;
    this.trimHeld();
    return buf;
  }

  /** Lets the least recently read go until the bytes held are within seriesIndexHeldBytesMax (the newest fits alone). */
  private trimHeld(): void {
    while (this.heldBytes > STORAGE_LIMITS.seriesIndexHeldBytesMax && this.held.size > 0) this.letGo(this.held.keys().next().value as number);
  }

  /** Lets a sidecar's held chunk bytes go. */
  private letGo(seq: number): void {
    const o = this.held.get(seq);
    if (!o) return;
    this.held.delete(seq);
    this.heldBytes -= o.held?.length ?? 0;
    delete o.held;
  }

  /** Forgets a sidecar's index and held bytes (it is read from its file again, or not at all). */
  private forget(seq: number): void {
    this.letGo(seq);
    this.opened.delete(seq);
  }

  /** Bytes of sidecar chunks held now. */
  get heldBytesNow(): number {
    return this.heldBytes;
  }

  /** A sidecar failed a check: never used again; deleted and rebuilt when the archive is writable. */
  private async damaged(f: FileEntry, err: unknown): Promise<void> {
    this.stats.damaged++;
    this.forget(f.seq);
    this.absent.add(f.seq);
    const why = isTapedeckError(err) ? err.message : String((err as Error).message ?? err);
    const code = isTapedeckError(err) ? err.code : 'TPD_IO';
    this.a.logger.warn({ file: f.name, code, err: why }, 'series sidecar unusable: reads use the blocks; it is built again');
    if (!this.buildsEnabled) return;
    await rm(sidecarPath(this.a, f.name), { force: true }).catch(() => undefined);
    this.enqueue(f.seq);
  }

  /** A read found no sidecar for f: build it (a file fetched back from cold storage, one sealed before builds started). */
  private want(f: FileEntry): void {
    // Without builds (a read-only open) another process may write it: look again next time.
    if (this.buildsEnabled) this.enqueue(f.seq);
  }

  // ---------------------------------------------------------------- builds and deletion

  /** Queues f's sidecar for a build (once). */
  enqueue(seq: number): void {
    // A file the server is compacting is built once settled (server/series-index.ts).
    if (this.a.settling?.pending(seq) === true) return;
    if (!this.builds.accepts(seq)) return;
    this.absent.add(seq);
    this.builds.push(seq);
  }

  /** Resolves once no build is queued or running. */
  whenIdle(): Promise<void> {
    return this.builds.whenIdle();
  }

  /** f's sidecar is built: usable, unless f was evicted to cold storage meanwhile (its sidecar goes with it). */
  private async built(f: FileEntry, seq: number): Promise<void> {
    const now = this.a.fileList.bySeq(seq);
    if (!now || now.location !== 'local' || now.name !== f.name) await this.remove(f.name, seq);
    else this.absent.delete(seq);
  }

  /** A file fetched back from cold storage: local again, its sidecar is built (again). */
  fetched(name: string): void {
    const f = this.a.files.find((e) => e.name === name);
    if (!f) return;
    this.absent.delete(f.seq);
    this.enqueue(f.seq);
  }

  /** Deletes a segment's sidecar (its segment left the local disk: retention, eviction). */
  async remove(name: string, seq?: number): Promise<void> {
    if (seq !== undefined) {
      this.forget(seq);
      this.absent.add(seq);
    } else {
      for (const [s, o] of this.opened) if (o.name === name) this.forget(s);
    }
    await rm(sidecarPath(this.a, name), { force: true });
  }

  /**
   * At start: removes temporary files (a build cut by a crash) and sidecars whose segment is
   * no longer a local sealed file, then queues a build for every sealed local file without one.
   */
  async start(): Promise<void> {
    this.buildsEnabled = true;
    for (const f of await sweepSidecars(this.a)) this.enqueue(f.seq);
  }

  /** Stops builds (the one running gives up at its next block); waits for it. */
  async stop(): Promise<void> {
    await this.builds.stop();
  }
}

/** A sidecar's chunk bytes are held once reads have asked for 1/this of them. */
const HOLD_READ_FRACTION = 8;

function cacheKey(o: Open, ix: SidecarIndex, c: number, id: number): string {
  return `${o.seq}.${o.gen}:s${ix.slice[c] as number}:${id}`;
}

const stores = new WeakMap<Archive, SeriesIndexStore>();

/** The archive's sidecar store (created on first use; builds start only when start() is called). */
export function seriesIndexOf(a: Archive): SeriesIndexStore {
  let s = stores.get(a);
  if (!s) stores.set(a, (s = new SeriesIndexStore(a)));
  return s;
}
