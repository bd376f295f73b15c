/**
 * `tapedeck verify`'s check of the per-series sidecars (series-index/*.sidx): every byte of
 * each one, as a reader would check it and more. The header (magic, version, CRC32C, the
 * segment's identity as verify found it in the segment file), the index (CRC32C, inflating,
 * every bound), every chunk (its CRC32C over its place, decoding, counts and times), and that
 * the chunks fill the bytes between the header and the index exactly (nothing unchecked in
 * between). A sidecar is derived (readers fall back to the blocks, the server rebuilds it),
 * but damage to it must still be found by verify, not only by the first query that reads it.
 *
 * Not damage, and not reported: temporary files (`.tmp`, removed at start), a sidecar of a
 * file that is not a rotated local segment (removed at start), a sidecar of an earlier format
 * version (rebuilt at start), anything else in the directory (left alone).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isTapedeckError } from '../../protocol/errors.js';
import { SIDECAR_DIR, SIDECAR_SUFFIX, TEMP_SUFFIX } from './build.js';
import { decodeChunk } from './chunk.js';
import { decodeHeader, decodeIndex, earlierVersion, HEADER_BYTES, type SegmentIdentity } from './format.js';

export interface SidecarProblem {
  /** `series-index/<segment>.sidx` */
  file: string;
  offset: number | null;
  message: string;
}

/**
 * Checks the sidecars in `dir`/series-index against `segments` (the rotated files verify
 * read without a problem, by name, with the identity their blocks give). The code of every
 * problem is TPD_CORRUPT_BLOCK, as a reader's.
 */
export async function verifySidecars(dir: string, segments: ReadonlyMap<string, SegmentIdentity>): Promise<SidecarProblem[]> {
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
      for (const p of sidecarProblems(bytes, id)) out.push({ file, ...p });
    } catch (err) {
      out.push({ file, offset: null, message: `series sidecar cannot be read: ${(err as Error).message}` });
    }
  }
  return out;
}

/** The problems of one sidecar's bytes (none when every check holds). */
export function sidecarProblems(bytes: Uint8Array, id: SegmentIdentity): Array<{ offset: number | null; message: string }> {
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
      try {
        decodeChunk(bytes.subarray(off, off + len), ix.n[c] as number, ix.first[c] as number, ix.last[c] as number, { id: ix.ids[p] as number, slice: ix.slice[c] as number });
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

const messageOf = (err: unknown): string => (isTapedeckError(err) ? err.message : `series sidecar: ${String((err as Error).message ?? err)}`);
