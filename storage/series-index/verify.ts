/**
 * `tapedeck verify`'s check of the per-series sidecars (series-index/*.sidx): every byte of
 * each one, as a reader would check it and more. The header (magic, version, CRC32C, the
 * segment's identity as verify found it in the segment file), the index (CRC32C, inflating,
 * every bound), every chunk (its CRC32C over its place, decoding, counts and times), and that
 * the chunks fill the bytes between the header and the index exactly (nothing unchecked in
 * between). A version-5 sidecar's references must lie in the bodies of their delta
 * frames in the segment (committed, as verify found them), and their bytes, read from the
 * segment file, must match each chunk's CRC32C and decode. A sidecar is derived (readers fall back to the blocks, the server rebuilds it),
 * but damage to it must still be found by verify, not only by the first query that reads it.
 *
 * Not damage, and not reported: temporary files (`.tmp`, removed at start), a sidecar of a
 * file that is not a rotated local segment (removed at start), a sidecar of an earlier format
 * version (rebuilt at start), anything else in the directory (left alone).
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isTapedeckError } from '../../protocol/errors.js';
import type { BlockRow } from '../catalog-rows.js';
import { FRAME_HEADER_BYTES } from '../codec/frame.js';
import { SPLIT_LENGTHS_BYTES } from '../codec/frame-split.js';
import { readExactly } from '../segment-file.js';
import { SIDECAR_DIR, SIDECAR_SUFFIX, TEMP_SUFFIX } from './build.js';
import { decodeChunk, type ChunkPlace } from './chunk.js';
import { decodeRefChunk, decodeRefValues, type RefChunk } from './chunk-refs.js';
import { decodeHeader, decodeIndex, earlierVersion, HEADER_BYTES, type SegmentIdentity } from './format.js';
import { chunkRefs } from './index-refs.js';

export interface SidecarProblem {
  /** `series-index/<segment>.sidx` */
  file: string;
  offset: number | null;
  message: string;
}

/** A version-5 chunk whose references are checked against its segment (checkRefs). */
interface RefChunkAt {
  offset: number;
  place: ChunkPlace;
  chunk: RefChunk;
}

/**
 * Checks the sidecars in `dir`/series-index against `segments` (the rotated files verify
 * read without a problem, by name, with the identity their blocks give) and, for version 5,
 * `deltaFrames` (each such file's delta frames, in order). The code of every problem is
 * TPD_CORRUPT_BLOCK, as a reader's.
 */
export async function verifySidecars(dir: string, segments: ReadonlyMap<string, SegmentIdentity>, deltaFrames: ReadonlyMap<string, readonly BlockRow[]> = new Map()): Promise<SidecarProblem[]> {
  const out: SidecarProblem[] = [];
  const names = await readdir(join(dir, SIDECAR_DIR)).catch(() => [] as string[]);
  for (const n of names.sort()) {
    if (n.endsWith(TEMP_SUFFIX) || !n.endsWith(SIDECAR_SUFFIX)) continue;
    const id = segments.get(n.slice(0, -SIDECAR_SUFFIX.length));
    if (!id) continue;
    const file = `${SIDECAR_DIR}/${n}`;
    const path = join(dir, SIDECAR_DIR, n);
    try {
      if (!(await stat(path)).isFile()) {
        out.push({ file, offset: null, message: 'series sidecar: not a regular file' });
        continue;
      }
      const bytes = new Uint8Array(await readFile(path));
      if (earlierVersion(bytes)) continue;
      const refs: RefChunkAt[] = [];
      for (const p of sidecarProblems(bytes, id, refs)) out.push({ file, ...p });
      if (refs.length > 0) for (const p of await refProblems(join(dir, id.name), deltaFrames.get(id.name) ?? [], refs)) out.push({ file, ...p });
    } catch (err) {
      out.push({ file, offset: null, message: `series sidecar cannot be read: ${(err as Error).message}` });
    }
  }
  return out;
}

/**
 * The problems of one sidecar's bytes (none when every check holds). A version-5 sidecar's
 * chunks that pass are put in `refs`, to be checked against the segment (refProblems).
 */
export function sidecarProblems(bytes: Uint8Array, id: SegmentIdentity, refs: RefChunkAt[] = []): Array<{ offset: number | null; message: string }> {
  let h;
  let ix;
  try {
    h = decodeHeader(bytes.subarray(0, HEADER_BYTES), id, bytes.length);
  } catch (err) {
    return [{ offset: 0, message: messageOf(err) }];
  }
  try {
    ix = decodeIndex(bytes.subarray(h.indexOffset, h.indexOffset + h.indexBytes), h);
  } catch (err) {
    return [{ offset: h.indexOffset, message: messageOf(err) }];
  }
  const out: Array<{ offset: number | null; message: string }> = [];
  const spans: Array<[number, number]> = [];
  for (let p = 0; p < ix.ids.length; p++) {
    for (let c = ix.chunkStart[p] as number; c < (ix.chunkStart[p + 1] as number); c++) {
      const off = ix.offset[c] as number;
      const len = ix.bytes[c] as number;
      spans.push([off, off + len]);
      const place = { id: ix.ids[p] as number, slice: ix.slice[c] as number };
      const chunk = bytes.subarray(off, off + len);
      try {
        if (ix.refs) refs.push({ offset: off, place, chunk: decodeRefChunk(chunk, ix.n[c] as number, ix.first[c] as number, ix.last[c] as number, place, chunkRefs(ix.refs, c)) });
        else decodeChunk(chunk, ix.n[c] as number, ix.first[c] as number, ix.last[c] as number, place);
      } catch (err) {
        out.push({ offset: off, message: messageOf(err) });
      }
    }
  }
  // The chunks fill [header, index) exactly: bytes no chunk holds would be bytes no check reads.
  spans.sort((x, y) => x[0] - y[0]);
  let at = HEADER_BYTES;
  for (const [from, to] of spans) {
    if (from !== at) {
      out.push({ offset: Math.min(from, at), message: from > at ? `series sidecar: ${from - at} byte(s) at ${at} held by no chunk` : `series sidecar: chunks overlap at ${from}` });
    }
    at = Math.max(at, to);
  }
  if (at !== h.indexOffset) out.push({ offset: at, message: `series sidecar: ${h.indexOffset - at} byte(s) at ${at} held by no chunk before the index` });
  return out;
}

/**
 * Version-5 references against their segment: each within the column bodies of its delta
 * frame (after the frame's header and split lengths, before its end), and the bytes they
 * name matching their chunk's CRC32C and decoding to its count.
 */
async function refProblems(segment: string, frames: readonly BlockRow[], refs: readonly RefChunkAt[]): Promise<Array<{ offset: number | null; message: string }>> {
  const out: Array<{ offset: number | null; message: string }> = [];
  const fh = await open(segment, 'r');
  try {
    for (const { offset, place, chunk } of refs) {
      const outside = chunk.refs.find((r) => {
        const f = frames[r.block];
        return f === undefined || r.offset < f.offset + FRAME_HEADER_BYTES + SPLIT_LENGTHS_BYTES || r.offset + r.bytes > f.offset + f.frameBytes;
      });
      if (outside) {
        out.push({ offset, message: `series sidecar: a reference of path ${place.id} (slice ${place.slice}) lies outside the bodies of delta block ${outside.block}` });
        continue;
      }
      const bodies: Uint8Array[] = [];
      for (const r of chunk.refs) bodies.push(await readExactly(fh, r.bytes, r.offset));
      try {
        decodeRefValues(chunk, (i) => bodies[i] as Uint8Array, place);
      } catch (err) {
        out.push({ offset, message: messageOf(err) });
      }
    }
  } finally {
    await fh.close();
  }
  return out;
}

const messageOf = (err: unknown): string => (isTapedeckError(err) ? err.message : `series sidecar: ${String((err as Error).message ?? err)}`);
