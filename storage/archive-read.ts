/**
 * How an archive's blocks are read (storage/archive.ts's read methods delegate here):
 * through the archive's shared file handles, one read and decode per block however many
 * ask (the shared decoded-block cache), every frame checked against its catalog row before
 * it is decoded, and a remote file fetched back first through the remote store (cold
 * storage with a get hook; without one, reading a remote file fails).
 */
import { TapedeckError } from '../protocol/errors.js';
import type { Archive, FetchWait, RemoteStore } from './archive.js';
import { BlockCache } from './block-cache.js';
import type { BlockRow } from './catalog.js';
import { PayloadBuffer } from './codec/frame.js';
import { decodeBatches, decodeBatchesSelected, type DecodedBatches } from './codec/payload.js';
import { checkedFrame, checkedPayload, checkFrameLength, withDetails } from './checked-frame.js';
import { FileHandles } from './file-handles.js';
import { isIndexed, type FileEntry } from './file-list.js';
import { STORAGE_LIMITS } from './limits.js';
import { readExactly, readInto } from './segment-file.js';
import { filterDecoded } from './series-read.js';

export class ArchiveReads {
  /** Where remote files are fetched from; undefined: reading a remote file fails. */
  remote: RemoteStore | undefined;
  readonly handles: FileHandles;
  private readonly a: Archive;
  private readonly cache = new BlockCache(STORAGE_LIMITS.decodedCacheUpdatesMax);
  /** payloadOf's LZ4 payloads are decompressed here, one after the other (see payloadOf). */
  private readonly payloadBuffer = new PayloadBuffer(STORAGE_LIMITS.payloadBufferBytesMax);

  constructor(a: Archive) {
    this.a = a;
    this.handles = new FileHandles(a.dir, () => a.isClosed);
  }

  /** Drops a file's decoded blocks (every generation: it was replaced). */
  dropFile(seq: number): void {
    this.cache.dropFile(seq);
  }

  /**
   * Reads and decodes one block (shared cache, one read per block however many ask). A
   * remote file is fetched first; `wait` hears about it.
   */
  readBlock(entry: FileEntry, row: BlockRow, wait?: FetchWait): Promise<DecodedBatches> {
    if (entry.location === 'remote') return this.fetchRemote(entry, wait).then(() => this.readLocalBlock(entry, row));
    return this.readLocalBlock(entry, row);
  }

  /** Makes a remote file that was never indexed readable (fetches and indexes it); no-op otherwise. */
  async prepare(entry: FileEntry, wait?: FetchWait): Promise<void> {
    if (!isIndexed(entry)) await this.fetchRemote(entry, wait);
  }

  private async fetchRemote(entry: FileEntry, wait: FetchWait | undefined): Promise<void> {
    if (entry.location !== 'remote' || !this.remote) {
      const why = entry.location === 'remote' ? 'remote and no get hook is configured' : entry.location;
      throw new TapedeckError('TPD_FILE_UNAVAILABLE', `file ${entry.name} is ${why}`, { file: entry.name });
    }
    const signal = wait?.signal;
    signal?.throwIfAborted();
    wait?.({ name: entry.name, phase: 'start' });
    try {
      // A reader whose signal aborts stops waiting; the fetch goes on for the others (one fetch per file).
      await (signal === undefined ? this.remote.fetch(entry) : untilAborted(this.remote.fetch(entry), signal));
    } catch (err) {
      wait?.({ name: entry.name, phase: 'failed', error: err });
      throw err;
    }
    wait?.({ name: entry.name, phase: 'done' });
  }

  /**
   * One block with only the updates of the kept paths (every batch listed, count 0 when none
   * of its updates is kept). A block already in the shared cache is filtered from there;
   * otherwise only the kept columns are decoded (codec decodeBatchesSelected),
   * outside the cache, since a partial decode serves no other reader.
   */
  async readBlockSelected(entry: FileEntry, row: BlockRow, keep: (id: number) => boolean, wait?: FetchWait): Promise<DecodedBatches> {
    const held = this.cache.peek(blockKey(entry, row));
    if (held) return filterDecoded(held, keep);
    if (entry.location === 'remote') await this.fetchRemote(entry, wait);
    return this.readChecked(entry, row, (raw, firstTs) => decodeBatchesSelected(raw, firstTs, keep));
  }

  private readLocalBlock(entry: FileEntry, row: BlockRow): Promise<DecodedBatches> {
    let rawBytes = 0;
    const decode = (raw: Uint8Array, firstTs: number): DecodedBatches => {
      rawBytes = raw.length;
      return decodeBatches(raw, firstTs);
    };
    return this.cache.get(blockKey(entry, row), () => this.readChecked(entry, row, decode), () => rawBytes);
  }

  /**
   * One block's payload, undecoded, with every check readBlock makes before decoding (the
   * frame's CRC32C and length, the frame against its catalog row), failing as readBlock
   * fails. For readers that decode it their own way (Cursor.nextColumns); nothing is cached.
   * A remote file is fetched first; `wait` hears about it.
   */
  async readPayload(entry: FileEntry, row: BlockRow, wait?: FetchWait): Promise<Uint8Array> {
    if (entry.location === 'remote') await this.fetchRemote(entry, wait);
    // A payload of its own: the caller resumes after an await, when payloadOf's buffer may hold another block.
    return checkedFrame(entry, row, await this.readBytes(entry, row.offset, row.frameBytes), undefined);
  }

  /**
   * Bytes [offset, offset + length) of a local file, fewer where it ends, through the
   * archive's shared handles (a reader that reads several blocks' frames in one I/O).
   */
  readBytes(entry: FileEntry, offset: number, length: number): Promise<Uint8Array> {
    return this.handles.with(entry, (fh) => readExactly(fh, length, offset));
  }

  /**
   * readBytes into the caller's buffer (at least `length` bytes): how many bytes there were,
   * fewer where the file ends. For a reader that reuses one buffer for its read-ahead instead
   * of a new one per span (Cursor.nextColumns could: payloads of such frames are views of
   * it, and nothing decoded from a payload keeps a view: codec/frame.ts plain).
   */
  async readBytesInto(entry: FileEntry, offset: number, length: number, buf: Uint8Array): Promise<number> {
    if (length > buf.length) throw new RangeError(`readBytesInto: ${length} bytes into a buffer of ${buf.length}`);
    return this.handles.with(entry, (fh) => readInto(fh, buf, length, offset));
  }

  /**
   * The payload of a block from its frame's bytes (as read by readBytes), checked and failing
   * as readPayload. It may be a view of a buffer the archive reuses for the next payloadOf
   * (an LZ4 payload is decompressed there: no buffer per block to collect): decode it before
   * anything else can run (no await in between) and keep no view of it. Cursor.nextColumns
   * does (storage/cursor-columns.ts: the column decoders copy every value out; test/payload-
   * buffer.test.ts holds earlier blocks' results while later ones are read).
   */
  payloadOf(entry: FileEntry, row: BlockRow, frame: Uint8Array): Uint8Array {
    return checkedFrame(entry, row, frame, this.payloadBuffer);
  }

  /** Reads one block, checks it against its catalog row, and decodes it with `decode`. */
  private async readChecked(entry: FileEntry, row: BlockRow, decode: (raw: Uint8Array, firstTs: number) => DecodedBatches): Promise<DecodedBatches> {
    const frame = await this.readBytes(entry, row.offset, row.frameBytes);
    checkFrameLength(entry, row, frame);
    return withDetails(entry, row, frame, (f, where) => {
      const raw = checkedPayload(f, row, where);
      const d = decode(raw, row.firstTs);
      if (d.ts.length !== row.batches) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: batch count differs from its header`);
      for (const id of d.ids) if (id >= this.a.paths.length) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: unknown path id ${id}`);
      return d;
    });
  }
}

/** `p`, or a rejection with the signal's reason as soon as `signal` aborts (p's own end is still handled). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener('abort', onAbort as () => void));
}

/** The decoded-block cache's key: file, generation (a compacted file's offsets name other blocks) and offset. */
function blockKey(entry: FileEntry, row: BlockRow): string {
  return `${entry.seq}.${entry.gen}:${row.offset}`;
}
