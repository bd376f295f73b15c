/**
 * A block's frame checked against its catalog row before anything of it is used: its
 * length, its CRC32C (openFrame) and its header against the row. Pure: the bytes come from
 * the caller (Archive reads them).
 */
import { TapedeckError, isTapedeckError } from '../protocol/errors.js';
import { CATALOG_ERROR_CODE, type BlockRow } from './catalog.js';
import { openFrame, type PayloadBuffer } from './codec/frame.js';
import type { FileEntry } from './file-list.js';

/** The payload of a block's frame (decompressed into `into` when given), once the frame checks. */
export function checkedFrame(entry: FileEntry, row: BlockRow, frame: Uint8Array, into: PayloadBuffer | undefined): Uint8Array {
  checkFrameLength(entry, row, frame);
  return withDetails(entry, row, frame, (f, where) => checkedPayload(f, row, where, into));
}

/** A frame shorter than its row: the file ends inside the block. */
export function checkFrameLength(entry: FileEntry, row: BlockRow, frame: Uint8Array): void {
  if (frame.length !== row.frameBytes) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${entry.name} block at ${row.offset}: file ends inside the block`, { file: entry.name, offset: row.offset });
}

/** The frame's payload once its CRC32C checks and its header matches the row (header and row then agree on times and counts). */
export function checkedPayload(frame: Uint8Array, row: BlockRow, where: string, into?: PayloadBuffer): Uint8Array {
  const { header, raw } = openFrame(frame, where, into);
  if (header.type !== row.type || header.frameBytes !== row.frameBytes || header.firstTs !== row.firstTs || header.lastTs !== row.lastTs || header.batches !== row.batches) {
    // The block checks, so the index is wrong: its other answers cannot be trusted either.
    throw new TapedeckError(CATALOG_ERROR_CODE, `${where}: the catalog's row differs from the block; rebuild it with tapedeck reindex`);
  }
  return raw;
}

/** Runs `fn` on a block's frame; an error without details gets the block's file and offset. */
export function withDetails<T>(entry: FileEntry, row: BlockRow, frame: Uint8Array, fn: (frame: Uint8Array, where: string) => T): T {
  try {
    return fn(frame, `${entry.name} block at ${row.offset}`);
  } catch (err) {
    if (isTapedeckError(err) && err.details === undefined) {
      throw new TapedeckError(err.code, err.message, { file: entry.name, offset: row.offset }, { cause: err });
    }
    throw err;
  }
}
