/**
 * The sidecar index decoder as it was at 3d08c15 (arrays of numbers, then typed copies), kept
 * frozen as the oracle of test/series-sidecar-index.test.ts: storage/series-index/format.ts's
 * decodeIndex must give the same index, or fail with the same message, on any bytes.
 */
import { inflateRawSync } from 'node:zlib';
import { TapedeckError } from '../../protocol/errors.js';
import { ByteReader } from '../../storage/codec/bytes.js';
import { crc32c } from '../../storage/codec/crc.js';
import { HEADER_BYTES, type SidecarHeader, type SidecarIndex } from '../../storage/series-index/format.js';

const corrupt = (what: string): TapedeckError => new TapedeckError('TPD_CORRUPT_BLOCK', `series sidecar: ${what}`);

/** The index after its CRC32C and every bound are checked against the header. */
export function decodeIndexOracle(stored: Uint8Array, h: SidecarHeader): SidecarIndex {
  if (stored.length !== h.indexBytes || crc32c(stored) !== h.indexCrc) throw corrupt('index CRC32C mismatch');
  let buf = stored;
  if (h.indexRawBytes !== h.indexBytes) {
    try {
      // Bounded by the declared length, itself bounded by DEFLATE's ratio (decodeHeader).
      buf = inflateRawSync(stored, { maxOutputLength: Math.max(1, h.indexRawBytes) });
    } catch (err) {
      throw new TapedeckError('TPD_CORRUPT_BLOCK', 'series sidecar: index does not inflate', undefined, { cause: err });
    }
    if (buf.length !== h.indexRawBytes) throw corrupt('index inflates to another length');
  }
  const r = new ByteReader(buf);
  const paths = r.uvar();
  if (paths > buf.length) throw corrupt('impossible path count');
  const ids = new Uint32Array(paths);
  const flags = new Uint8Array(paths);
  const chunkStart = new Uint32Array(paths + 1);
  const cols = { slice: [] as number[], offset: [] as number[], bytes: [] as number[], n: [] as number[], first: [] as number[], last: [] as number[] };
  let id = -1;
  for (let i = 0; i < paths; i++) {
    id += r.uvar() + 1;
    if (id > 0xffffffff) throw corrupt('path id out of range');
    ids[i] = id;
    flags[i] = r.u8();
    const chunks = r.uvar();
    if (chunks > buf.length) throw corrupt('impossible chunk count');
    let offset = 0;
    let slice = -1;
    let prevLast = h.firstTs;
    for (let c = 0; c < chunks; c++) {
      slice += r.uvar() + 1;
      offset += r.uvar();
      const bytes = r.uvar();
      const n = r.uvar();
      const first = prevLast + r.uvar();
      const last = first + r.uvar();
      if (slice > 0xffffffff || offset < HEADER_BYTES || offset + bytes > h.indexOffset || n === 0 || last > h.lastTs) throw corrupt(`chunk of path ${id} out of bounds`);
      prevLast = last;
      cols.slice.push(slice);
      cols.offset.push(offset);
      cols.bytes.push(bytes);
      cols.n.push(n);
      cols.first.push(first);
      cols.last.push(last);
    }
    chunkStart[i + 1] = cols.offset.length;
  }
  if (r.pos !== r.end) throw corrupt('trailing bytes after the index');
  return {
    ids,
    flags,
    chunkStart,
    slice: Uint32Array.from(cols.slice),
    offset: Float64Array.from(cols.offset),
    bytes: Uint32Array.from(cols.bytes),
    n: Uint32Array.from(cols.n),
    first: Float64Array.from(cols.first),
    last: Float64Array.from(cols.last),
  };
}
