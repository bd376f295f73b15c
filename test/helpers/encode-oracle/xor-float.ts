/**
 * The XOR column kind: float64s compressed as in Facebook's Gorilla (Pelkonen et al., 2015),
 * exact for every bit pattern (-0, NaN payloads such as Prometheus' stale marker, ±Inf,
 * subnormals). Each value is XORed with the previous one; a repeat costs one bit, a change
 * within the previous run of meaningful bits costs 2 + that many bits. Layout in
 * docs/format.md ("XOR column"). 64-bit patterns travel as two uint32 halves: no BigInt,
 * no allocation per value.
 */
import { ByteWriter, type ByteReader } from './bytes.js';
import { BitReader, BitWriter } from './bits.js';

const bitsView = new DataView(new ArrayBuffer(8));
const EXPONENT_ALL_ONES = 0x7ff00000;
/** High word of the one NaN V8 stores into arrays of doubles unchanged in every tier. */
const CANONICAL_NAN_HI = 0x7ff80000;

/**
 * Set by decoders that produced a NaN other than the canonical 0x7ff8000000000000: V8 may
 * change such a NaN when it is stored into an array of only doubles (optimised code quiets
 * a signalling NaN, the runtime replaces any NaN by the canonical one, so Prometheus' stale
 * marker 0x7ff0000000000002 and a quiet NaN's payload could be lost), so payload.ts then
 * decodes again into generic arrays. (The name is older than the wider rule: signalling
 * NaNs were the only ones noted until 2026-12-03.)
 */
export const decodeNotes = { signalingNaN: false };

/** True for the bits (hi, lo) of a NaN that an array of doubles may not keep (see decodeNotes). */
export function isFragileNaN(hi: number, lo: number): boolean {
  return (hi & EXPONENT_ALL_ONES) === EXPONENT_ALL_ONES && ((hi & 0x000fffff) !== 0 || lo !== 0) && (hi !== CANONICAL_NAN_HI || lo !== 0);
}

/** Notes a fragile NaN (isFragileNaN) among float64 bytes at buf[at, at + 8) (little-endian). */
export function noteSignalingNaN(view: DataView, at: number): void {
  if (isFragileNaN(view.getUint32(at + 4, true), view.getUint32(at, true))) decodeNotes.signalingNaN = true;
}
const bitsScratch = new ByteWriter(1 << 12);
const bitWriter = new BitWriter(bitsScratch);
const bitReader = new BitReader();

function clz64(hi: number, lo: number): number {
  return hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
}

function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

function ctz64(hi: number, lo: number): number {
  return lo !== 0 ? ctz32(lo) : 32 + ctz32(hi);
}

/** Writes the `len` bits of (hi, lo) >> shift, 1 <= len <= 64. */
function writeShifted(bw: BitWriter, hi: number, lo: number, shift: number, len: number): void {
  let mhi: number;
  let mlo: number;
  if (shift === 0) {
    mhi = hi;
    mlo = lo;
  } else if (shift < 32) {
    mlo = (lo >>> shift) | (hi << (32 - shift));
    mhi = hi >>> shift;
  } else {
    mlo = hi >>> (shift - 32);
    mhi = 0;
  }
  if (len > 32) {
    bw.write(mhi, len - 32);
    bw.write(mlo, 32);
  } else {
    bw.write(mlo, len);
  }
}

/**
 * The size in bits of the XOR coding of vals[from, to), found without writing it: the
 * writer codes a column only when this beats FLOAT64 (noisy doubles do not).
 */
export function xorColumnBits(vals: Float64Array, from: number, to: number): number {
  let bits = 0;
  let prevHi = 0;
  let prevLo = 0;
  let prevLead = -1;
  let prevTrail = 0;
  for (let i = from; i < to; i++) {
    bitsView.setFloat64(0, vals[i] as number, true);
    const hi = bitsView.getUint32(4, true);
    const lo = bitsView.getUint32(0, true);
    if (i === from) {
      bits += 64;
    } else {
      const xhi = (hi ^ prevHi) >>> 0;
      const xlo = (lo ^ prevLo) >>> 0;
      if (xhi === 0 && xlo === 0) {
        bits += 1;
      } else {
        const lead = clz64(xhi, xlo);
        const trail = ctz64(xhi, xlo);
        if (prevLead >= 0 && lead >= prevLead && trail >= prevTrail) {
          bits += 2 + 64 - prevLead - prevTrail;
        } else {
          bits += 2 + 12 + 64 - lead - trail;
          prevLead = lead;
          prevTrail = trail;
        }
      }
    }
    prevHi = hi;
    prevLo = lo;
  }
  return bits;
}

/** The XOR body of vals[from, to): `uvar byteLength`, then the bits. */
export function encodeXorColumn(w: ByteWriter, vals: Float64Array, from: number, to: number): void {
  bitsScratch.reset();
  bitWriter.reset();
  const bw = bitWriter;
  let prevHi = 0;
  let prevLo = 0;
  let prevLead = -1;
  let prevTrail = 0;
  for (let i = from; i < to; i++) {
    bitsView.setFloat64(0, vals[i] as number, true);
    const hi = bitsView.getUint32(4, true);
    const lo = bitsView.getUint32(0, true);
    if (i === from) {
      bw.write(hi, 32);
      bw.write(lo, 32);
    } else {
      const xhi = (hi ^ prevHi) >>> 0;
      const xlo = (lo ^ prevLo) >>> 0;
      if (xhi === 0 && xlo === 0) {
        bw.bit(0);
      } else {
        const lead = clz64(xhi, xlo);
        const trail = ctz64(xhi, xlo);
        if (prevLead >= 0 && lead >= prevLead && trail >= prevTrail) {
          bw.write(0b10, 2);
          writeShifted(bw, xhi, xlo, prevTrail, 64 - prevLead - prevTrail);
        } else {
          const len = 64 - lead - trail;
          bw.write(0b11, 2);
          bw.write(lead, 6);
          bw.write(len - 1, 6);
          writeShifted(bw, xhi, xlo, trail, len);
          prevLead = lead;
          prevTrail = trail;
        }
      }
    }
    prevHi = hi;
    prevLo = lo;
  }
  bw.flush();
  w.uvar(bitsScratch.pos);
  w.bytes(bitsScratch.buf.subarray(0, bitsScratch.pos));
}

/** Index of a float64's high 32-bit word in a Uint32Array view of a Float64Array. */
const HI_WORD = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f ? 1 : 0;
/** decodeXorColumn's values as bits, before they are copied out (grown as needed). */
let wordsScratch = new Float64Array(1024);

/** Reads an XOR body of at least one value into out[from, to). */
export function decodeXorColumn(r: ByteReader, out: unknown[], from: number, to: number): void {
  const n = to - from;
  if (wordsScratch.length < n) wordsScratch = new Float64Array(Math.max(n, wordsScratch.length * 2));
  decodeXorF64(r, wordsScratch, 0, n);
  const words = new Uint32Array(wordsScratch.buffer, 0, 2 * n);
  for (let i = 0; i < n; i++) {
    const hi = words[2 * i + HI_WORD] as number;
    const lo = words[2 * i + 1 - HI_WORD] as number;
    bitsView.setUint32(4, hi, true);
    bitsView.setUint32(0, lo, true);
    out[from + i] = bitsView.getFloat64(0, true);
    if (isFragileNaN(hi, lo)) decodeNotes.signalingNaN = true;
  }
}

/**
 * Reads an XOR body of at least one value into out[from, to) as bits: each value's two
 * 32-bit halves stored into out's words, so NaN payloads are kept whatever the engine does
 * with NaN numbers. The one reader of the layout (decodeXorColumn and the codec's
 * typed-array decode, columns.ts decodeColumnF64, share it).
 */
export function decodeXorF64(r: ByteReader, out: Float64Array, from: number, to: number): void {
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length * 2);
  const hiAt = HI_WORD;
  const bytes = r.uvar();
  const br = bitReader;
  br.start(r, bytes);
  let hi = br.read(32);
  let lo = br.read(32);
  let lead = 0;
  let len = 0;
  words[2 * from + hiAt] = hi;
  words[2 * from + 1 - hiAt] = lo;
  for (let i = from + 1; i < to; i++) {
    if (br.bit() === 1) {
      if (br.bit() === 1) {
        lead = br.read(6);
        len = br.read(6) + 1;
        if (lead + len > 64) r.fail('xor window past 64 bits');
      } else if (len === 0) {
        r.fail('xor window reused before one was set');
      }
      const trail = 64 - lead - len;
      let mhi = 0;
      let mlo: number;
      if (len > 32) {
        mhi = br.read(len - 32);
        mlo = br.read(32);
      } else {
        mlo = br.read(len);
      }
      if (trail === 0) {
        hi = (hi ^ mhi) >>> 0;
        lo = (lo ^ mlo) >>> 0;
      } else if (trail < 32) {
        hi = (hi ^ ((mhi << trail) | (mlo >>> (32 - trail)))) >>> 0;
        lo = (lo ^ (mlo << trail)) >>> 0;
      } else {
        hi = (hi ^ (mlo << (trail - 32))) >>> 0;
      }
    }
    words[2 * i + hiAt] = hi;
    words[2 * i + 1 - hiAt] = lo;
  }
  br.finish();
}

/** Moves past an XOR body without decoding it. */
export function skipXorColumn(r: ByteReader): void {
  r.bytes(r.uvar());
}
