/**
 * The sidecar index decoder (storage/series-index/format.ts decodeIndex: entries written into
 * typed columns as they are read) against the decoder it replaced (test/helpers/
 * sidecar-index-oracle.ts, frozen from 3d08c15): on seeded indexes, valid and hostile (bounds
 * broken, bytes flipped, cut, appended, overlong varints; stored as is or deflated, with a
 * CRC32C that matches so that the entries are read), both give the same index or fail with
 * the same message. Damage caught by the CRC32C is series-sidecar.test.ts' business.
 */
import { describe, expect, it } from 'vitest';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { crc32c } from '../storage/codec/crc.js';
import { decodeIndex, encodeIndex, HEADER_BYTES, type IndexEntry, type SidecarHeader, type SidecarIndex } from '../storage/series-index/format.js';
import { decodeIndexOracle } from './helpers/sidecar-index-oracle.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const FIRST_TS = 1_700_000_000_000_000;

/** Random entries: mostly within bounds, now and then not (offsets, times, zero counts); ids and values of every varint width. */
function entries(rand: () => number): IndexEntry[] {
  const out: IndexEntry[] = [];
  // One index in five has chunks out of bounds (an offset inside the header, no samples).
  const broken = rand() < 0.2;
  const paths = rand() < 0.1 ? 0 : 1 + Math.floor(rand() * (rand() < 0.2 ? 400 : 30));
  let id = -1;
  for (let p = 0; p < paths; p++) {
    id += 1 + (rand() < 0.05 ? Math.floor(rand() * 2 ** 33) : Math.floor(rand() * 3));
    const chunks: IndexEntry['chunks'] = [];
    const count = rand() < 0.1 ? 0 : Math.floor(rand() * (rand() < 0.1 ? 300 : 40));
    let slice = -1;
    let offset = HEADER_BYTES + Math.floor(rand() * 100);
    let last = FIRST_TS;
    const wide = rand() < 0.3;
    for (let c = 0; c < count; c++) {
      slice += 1 + Math.floor(rand() * 2);
      offset += Math.floor(rand() * (wide ? 1e6 : 100));
      const bytes = Math.floor(rand() * (wide ? 5000 : 100));
      const n = broken && rand() < 0.002 ? 0 : 1 + Math.floor(rand() * (wide ? 2000 : 100));
      const first = last + Math.floor(rand() * (wide ? 1e9 : 100));
      last = first + Math.floor(rand() * (wide ? 1e9 : 100));
      chunks.push({ slice, offset: broken && rand() < 0.001 ? 3 : offset, bytes, n, first, last });
    }
    out.push({ id, flags: Math.floor(rand() * 4), chunks });
  }
  return out;
}

/** Raw index bytes damaged in one of several ways (the CRC32C is computed after, so the entries are what fails). */
function damage(rand: () => number, raw: Uint8Array): Uint8Array {
  const r = rand();
  const b = Uint8Array.from(raw);
  if (raw.length === 0 || r < 0.5) return b;
  const at = Math.floor(rand() * raw.length);
  if (r < 0.65) {
    b[at] = (b[at] as number) ^ (1 << Math.floor(rand() * 8));
    return b;
  }
  if (r < 0.75) return b.subarray(0, at);
  if (r < 0.83) return Uint8Array.from([...b, ...Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * 256))]);
  if (r < 0.92) return Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: 1 + Math.floor(rand() * 10) }, () => 0x80 | Math.floor(rand() * 128)), ...b.subarray(at)]);
  b.fill(Math.floor(rand() * 256), at, Math.min(raw.length, at + 1 + Math.floor(rand() * 40)));
  return b;
}

function outcome(f: () => SidecarIndex): SidecarIndex | string {
  try {
    return f();
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
}

describe('sidecar index decoding', () => {
  it('gives the index, or the error, the former decoder gives, on seeded valid and hostile indexes', () => {
    const seed = scheduleSeed('SIDECAR_INDEX_SEED', 'sidecar-index');
    const rand = rng(seed);
    let decoded = 0;
    let refused = 0;
    let grown = 0;
    for (let round = 0; round < 3000; round++) {
      const lastTs = FIRST_TS + Math.floor(rand() * (rand() < 0.3 ? 1e4 : 1e14));
      const indexOffset = HEADER_BYTES + Math.floor(rand() * (rand() < 0.3 ? 1e4 : 1e12));
      const es = entries(rand);
      const { stored, rawBytes } = encodeIndex(es, FIRST_TS);
      // Raw: what encodeIndex wrote before deflating (inflated back when it deflated).
      const raw = rawBytes === stored.length ? stored : new Uint8Array(inflateRawSync(stored));
      const bytes = damage(rand, raw);
      const deflate = rand() < 0.5 && bytes.length > 0;
      const body = deflate ? new Uint8Array(deflateRawSync(bytes)) : bytes;
      const h: SidecarHeader = { archiveId: '0123456789abcdef', seq: 1, name: 'x', committedBytes: 0, deltaBlocks: 0, firstTs: FIRST_TS, lastTs, indexOffset, indexBytes: body.length, indexRawBytes: deflate ? bytes.length : body.length, indexCrc: crc32c(body) };
      const want = outcome(() => decodeIndexOracle(body, h));
      const got = outcome(() => decodeIndex(body, h));
      expect(got, `round ${round} (seed ${seed})`).toEqual(want);
      if (typeof want === 'string') refused++;
      else {
        decoded++;
        if (want.offset.length > Math.ceil(bytes.length / 12)) grown++;
      }
    }
    // Every kind in numbers: decoded, refused, and columns grown past their first size.
    expect(decoded).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(500);
    expect(grown).toBeGreaterThan(100);
  });
});
