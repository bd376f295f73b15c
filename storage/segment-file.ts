/**
 * Reading segment files: the header, a scan of frame headers over a byte range (for
 * repair, reindex and verify), and whole blocks. Bounded memory: scans read
 * scanChunkBytes at a time and never hold more than one block's payload.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { formatTs } from '../protocol/time.js';
import { decodeHeader, encodeSlot, HEADER_BYTES, SLOT_BYTES, SLOT_NAMES, slotOffset, type DecodedHeader } from './codec/header.js';
import { BlockType, decodeFrameHeader, FRAME_HEADER_BYTES, FRAME_MAGIC, openFrame, type FrameHeader } from './codec/frame.js';
import { decodeBatches, decodePathDefs, type PathDef } from './codec/payload.js';
import { STORAGE_LIMITS } from './limits.js';
import type { BlockRow } from './catalog.js';

/** Rotated files are named by the RFC 3339 UTC time they ended, with microseconds. */
export const ROTATED_NAME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
export const CURRENT_NAME = 'current';

export function rotatedName(us: number): string {
  return formatTs(us); // 2026-11-23T07:45:12.123456Z
}

export async function readExactly(fh: FileHandle, length: number, position: number): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafe(length);
  const got = await readInto(fh, buf, length, position);
  return got === length ? buf : buf.subarray(0, got);
}

/** Reads bytes [position, position + length) into buf[0, length); returns how many there were (fewer where the file ends). */
export async function readInto(fh: FileHandle, buf: Uint8Array, length: number, position: number): Promise<number> {
  if (length > buf.length) throw new RangeError(`reading ${length} bytes into a buffer of ${buf.length}`);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

export async function readFileHeader(fh: FileHandle): Promise<DecodedHeader> {
  return decodeHeader(await readExactly(fh, HEADER_BYTES, 0));
}

export async function readHeaderAt(path: string): Promise<DecodedHeader> {
  const fh = await open(path, 'r');
  try {
    return await readFileHeader(fh);
  } finally {
    await fh.close();
  }
}

export interface ScanProblem {
  offset: number;
  code: string;
  message: string;
}

export interface ScanResult {
  blocks: BlockRow[];
  paths: PathDef[];
  /** Offset just past the last good block. */
  endOffset: number;
  problems: ScanProblem[];
  batches: number;
  updates: number;
}

export interface ScanOptions {
  /** Read and check every payload (CRC, decompression, decoding, timestamp order). */
  verify?: boolean;
  /** Keep scanning past a bad block (verify): resynchronise on the next frame magic. */
  continueAfterError?: boolean;
  /** Timestamp the first block must not precede (the previous file's last batch). */
  minTs?: number;
}

/**
 * Walks the frames in [from, to). PATHS payloads are always read (the dictionary lives
 * there); other payloads only when `verify` is set.
 */
export async function scanBlocks(fh: FileHandle, from: number, to: number, opts: ScanOptions = {}): Promise<ScanResult> {
  const out: ScanResult = { blocks: [], paths: [], endOffset: from, problems: [], batches: 0, updates: 0 };
  let offset = from;
  let lastTs = opts.minTs ?? -Infinity;
  let chunk: Uint8Array = new Uint8Array(0);
  let chunkAt = 0;
  const headerAt = async (off: number): Promise<Uint8Array> => {
    if (off < chunkAt || off + FRAME_HEADER_BYTES > chunkAt + chunk.length) {
      chunkAt = off;
      chunk = await readExactly(fh, Math.min(STORAGE_LIMITS.scanChunkBytes, to - off), off);
    }
    return chunk.subarray(off - chunkAt, off - chunkAt + FRAME_HEADER_BYTES);
  };
  const fail = async (code: string, message: string, header?: FrameHeader): Promise<boolean> => {
    out.problems.push({ offset, code, message });
    if (!opts.continueAfterError) return false;
    if (header && offset + header.frameBytes <= to) {
      offset += header.frameBytes;
      return true;
    }
    const next = await findMagic(fh, offset + 1, to);
    if (next < 0) return false;
    offset = next;
    return true;
  };

  while (offset < to) {
    if (to - offset < FRAME_HEADER_BYTES) {
      if (!(await fail('TPD_CORRUPT_BLOCK', `${to - offset} stray bytes before the committed end`))) break;
      continue;
    }
    const h = decodeFrameHeader(await headerAt(offset));
    if (typeof h === 'string') {
      if (!(await fail('TPD_CORRUPT_BLOCK', h))) break;
      continue;
    }
    if (offset + h.frameBytes > to) {
      if (!(await fail('TPD_CORRUPT_BLOCK', 'block extends past the committed end'))) break;
      continue;
    }
    // A frame that reading on never opens (an IMAGE: reads pass over it; a block claiming no
    // batch: nothing to read) is opened here (CRC32C, decompression), or a damaged type or
    // batch count (a DELTA read as an IMAGE or as empty) would leave that block's batches
    // out of every read in silence, the file indexed as sound.
    const unread = h.type === BlockType.IMAGE || h.batches === 0;
    const needPayload = opts.verify === true || h.type === BlockType.PATHS || unread;
    if (needPayload) {
      try {
        const frame = await readExactly(fh, h.frameBytes, offset);
        const { raw } = openFrame(frame, `block at ${offset}`);
        if (h.type === BlockType.PATHS) {
          out.paths.push(...decodePathDefs(raw, h.firstTs));
        } else if (opts.verify) {
          const d = decodeBatches(raw, h.firstTs);
          if (d.ts.length !== h.batches || d.ids.length !== h.updates) {
            throw new TapedeckError('TPD_CORRUPT_BLOCK', 'batch or update count differs from the frame header');
          }
          for (const t of d.ts) {
            // An image repeats the timestamp of the batch before it.
            const ok = h.type === BlockType.IMAGE ? t >= lastTs : t > lastTs;
            if (!ok) throw new TapedeckError('TPD_CORRUPT_BLOCK', `timestamp ${t} is not after ${lastTs}`);
            lastTs = t;
          }
          if (d.ts.length > 0 && (d.ts[0] !== h.firstTs || d.ts[d.ts.length - 1] !== h.lastTs)) {
            throw new TapedeckError('TPD_CORRUPT_BLOCK', 'batch timestamps differ from the frame time range');
          }
        }
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        if (!(await fail(err.code, err.message, h))) break;
        continue;
      }
    }
    if (opts.verify && h.padding !== 0) out.problems.push({ offset, code: 'TPD_CORRUPT_BLOCK', message: 'frame bytes 44..48 are not zero' });
    out.blocks.push({ offset, frameBytes: h.frameBytes, type: h.type, firstTs: h.firstTs, lastTs: h.lastTs, batches: h.batches, updates: h.updates });
    if (h.type === BlockType.DELTA) {
      out.batches += h.batches;
      out.updates += h.updates;
    }
    offset += h.frameBytes;
    out.endOffset = offset;
  }
  return out;
}

/** A file's committed length, recovered past a damaged commit slot. */
export interface CommitRecovery {
  committedBytes: number;
  /** Names of the slots that fail their CRC32C ('A', 'B'). */
  damagedSlots: string[];
  /** Intact blocks found past the surviving slot's length, and their bytes. */
  recoveredBlocks: number;
  recoveredBytes: number;
  /** Bytes past the recovered length up to the end of the file (not served). */
  cutBytes: number;
}

/**
 * The committed length of a file. With both slots sound it is the newest slot's. A
 * damaged slot may have held the newest commit, so the blocks past the surviving slot's
 * length are scanned forward, each checked whole (CRC32C, decompression, decoding), and
 * every intact one is taken back; the first block that fails ends the file. Blocks
 * written but never committed (a crash between the two phases) look the same and are
 * taken too: their data was written in full and checks, so serving it is never wrong.
 */
export async function recoverCommit(fh: FileHandle, h: DecodedHeader, sizeBytes: number): Promise<CommitRecovery> {
  const damagedSlots = SLOT_NAMES.filter((_, i) => h.slots[i] === 'damaged');
  const slotBytes = h.commit.committedBytes;
  if (damagedSlots.length === 0) return { committedBytes: slotBytes, damagedSlots, recoveredBlocks: 0, recoveredBytes: 0, cutBytes: 0 };
  const from = Math.min(slotBytes, sizeBytes);
  const res = await scanBlocks(fh, from, sizeBytes, { verify: true });
  return {
    committedBytes: res.endOffset,
    damagedSlots,
    recoveredBlocks: res.blocks.length,
    recoveredBytes: res.endOffset - from,
    cutBytes: sizeBytes - res.endOffset,
  };
}

/**
 * Rewrites both commit slots with the recovered length (generations g+1 then g+2, each
 * synced), so the file reads clean again and the writer's next commit lands on a sound slot.
 */
export async function repairCommitSlots(fh: FileHandle, h: DecodedHeader, committedBytes: number): Promise<void> {
  for (const generation of [h.commit.generation + 1, h.commit.generation + 2]) {
    await fh.write(encodeSlot({ generation, committedBytes }), 0, SLOT_BYTES, slotOffset(generation));
    await fh.datasync();
  }
}

async function findMagic(fh: FileHandle, from: number, to: number): Promise<number> {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(FRAME_MAGIC);
  for (let at = from; at < to; at += STORAGE_LIMITS.scanChunkBytes - 3) {
    const buf = Buffer.from(await readExactly(fh, Math.min(STORAGE_LIMITS.scanChunkBytes, to - at), at));
    const i = buf.indexOf(magic);
    if (i >= 0) return at + i;
    if (buf.length < 4) break;
  }
  return -1;
}

export { HEADER_BYTES };
