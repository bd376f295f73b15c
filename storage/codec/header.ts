/**
 * Segment file header (96 bytes, little-endian). See docs/format.md.
 *
 * The committed length lives in two slots written alternately (slot = generation % 2),
 * each with its own CRC32C, so a torn header write leaves the other slot intact: readers
 * take the valid slot with the highest generation.
 */
import { TapedeckError } from '../../protocol/errors.js';
import { crc32c } from './crc.js';
import { readI64, writeI64 } from './bytes.js';

export const FILE_MAGIC = new Uint8Array([0x54, 0x41, 0x50, 0x45, 0x44, 0x45, 0x43, 0x4b]); // "TAPEDECK"
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 96;
export const SLOT_BYTES = 24;
export const SLOT_OFFSETS = [48, 72] as const;

export interface FileHeader {
  version: number;
  /** 16 hex chars identifying the archive all its files belong to. */
  archiveId: string;
  /** Position of the file in its archive: 0, 1, 2, ... */
  seq: number;
  createdUs: number;
}

export interface CommitSlot {
  generation: number;
  committedBytes: number;
}

export function encodeHeader(h: FileHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_BYTES);
  const view = new DataView(buf.buffer);
  buf.set(FILE_MAGIC, 0);
  view.setUint16(8, h.version, true);
  view.setUint16(10, 0, true);
  view.setUint32(12, HEADER_BYTES, true);
  buf.set(hexToBytes(h.archiveId), 16);
  writeI64(view, 24, h.seq);
  writeI64(view, 32, h.createdUs);
  view.setUint32(40, crc32c(buf.subarray(0, 40)), true);
  buf.set(encodeSlot({ generation: 0, committedBytes: HEADER_BYTES }), SLOT_OFFSETS[0]);
  return buf;
}

export function encodeSlot(s: CommitSlot): Uint8Array {
  const buf = new Uint8Array(SLOT_BYTES);
  const view = new DataView(buf.buffer);
  writeI64(view, 0, s.generation);
  writeI64(view, 8, s.committedBytes);
  view.setUint32(16, crc32c(buf.subarray(0, 16)), true);
  return buf;
}

export function slotOffset(generation: number): number {
  return SLOT_OFFSETS[generation % 2] as number;
}

/** What a commit slot holds: a valid commit, nothing yet (slot B of a file never committed twice), or damage. */
export type SlotState = 'valid' | 'empty' | 'damaged';

export interface DecodedHeader extends FileHeader {
  commit: CommitSlot;
  /** State of slots A and B. A damaged slot may have held the newest commit: see recoverCommit. */
  slots: [SlotState, SlotState];
}

/**
 * Decodes the first HEADER_BYTES of a file. Throws TapedeckError on anything wrong:
 * TPD_NOT_AN_ARCHIVE_FILE (no magic), TPD_CORRUPT_HEADER (CRC32C of bytes 0..40 fails, or
 * impossible values), TPD_FORMAT_VERSION (a valid header of a newer version; details.version).
 */
export function decodeHeader(buf: Uint8Array): DecodedHeader {
  if (buf.length < HEADER_BYTES) {
    if (buf.length >= 8 && !startsWithMagic(buf)) {
      throw new TapedeckError('TPD_NOT_AN_ARCHIVE_FILE', 'file does not start with the TAPEDECK magic');
    }
    throw new TapedeckError('TPD_CORRUPT_HEADER', `file is shorter than its ${HEADER_BYTES}-byte header`);
  }
  if (!startsWithMagic(buf)) throw new TapedeckError('TPD_NOT_AN_ARCHIVE_FILE', 'file does not start with the TAPEDECK magic');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  // The checksum comes first: a damaged version field must read as a corrupt header, not
  // as a newer version. Every version keeps bytes 0..44 (magic, version, CRC32C at 40).
  if (view.getUint32(40, true) !== crc32c(buf.subarray(0, 40))) {
    throw new TapedeckError('TPD_CORRUPT_HEADER', 'file header fails its CRC32C');
  }
  const version = view.getUint16(8, true);
  if (version > FORMAT_VERSION) {
    throw new TapedeckError('TPD_FORMAT_VERSION', `file format version ${version} is newer than supported version ${FORMAT_VERSION}`, { version });
  }
  const headerBytes = view.getUint32(12, true);
  if (version < 1 || headerBytes !== HEADER_BYTES) {
    throw new TapedeckError('TPD_CORRUPT_HEADER', `impossible header (version ${version}, length ${headerBytes})`);
  }
  let commit: CommitSlot = { generation: -1, committedBytes: HEADER_BYTES };
  const decoded = SLOT_OFFSETS.map((off) => decodeSlot(buf.subarray(off, off + SLOT_BYTES)));
  for (const s of decoded) if (s && s.generation > commit.generation) commit = s;
  const slots = decoded.map((s, i) => slotState(s, buf, i, commit.generation)) as [SlotState, SlotState];
  if (commit.generation < 0) commit = { generation: 0, committedBytes: HEADER_BYTES };
  return {
    version,
    archiveId: bytesToHex(buf.subarray(16, 24)),
    seq: readI64(view, 24),
    createdUs: readI64(view, 32),
    commit,
    slots,
  };
}

/**
 * Slot A is written when the file is created, so it is never legitimately empty; slot B
 * is written by commit 1, so once a slot holds a generation of 1 or more, both have been
 * written. An all-zero slot B beside a valid generation 0 is a file committed only once.
 */
function slotState(s: CommitSlot | undefined, buf: Uint8Array, index: number, bestGeneration: number): SlotState {
  if (s) return 'valid';
  const off = SLOT_OFFSETS[index] as number;
  const empty = buf.subarray(off, off + SLOT_BYTES).every((b) => b === 0);
  return empty && index === 1 && bestGeneration === 0 ? 'empty' : 'damaged';
}

/**
 * A slot whose CRC32C holds but whose values are impossible (a negative generation, a
 * length inside the header) cannot come from the writer: it counts as damaged.
 */
function decodeSlot(buf: Uint8Array): CommitSlot | undefined {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(16, true) !== crc32c(buf.subarray(0, 16))) return undefined;
  const s = { generation: readI64(view, 0), committedBytes: readI64(view, 8) };
  if (s.generation < 0 || s.committedBytes < HEADER_BYTES) return undefined;
  return s;
}

/** Reserved header bytes that must be zero but no CRC32C covers (verify reports them). */
export function headerReservedProblems(buf: Uint8Array): string[] {
  const out: string[] = [];
  const ranges: Array<[number, number, string]> = [
    [44, 48, 'reserved bytes 44..48'],
    [(SLOT_OFFSETS[0] as number) + 20, (SLOT_OFFSETS[0] as number) + SLOT_BYTES, 'padding of slot A'],
    [(SLOT_OFFSETS[1] as number) + 20, (SLOT_OFFSETS[1] as number) + SLOT_BYTES, 'padding of slot B'],
  ];
  for (const [from, to, what] of ranges) if (buf.subarray(from, to).some((b) => b !== 0)) out.push(`${what} of the header are not zero`);
  return out;
}

export const SLOT_NAMES = ['A', 'B'] as const;

function startsWithMagic(buf: Uint8Array): boolean {
  for (let i = 0; i < FILE_MAGIC.length; i++) if (buf[i] !== FILE_MAGIC[i]) return false;
  return true;
}

export function hexToBytes(hex: string): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(hex)) throw new TapedeckError('TPD_BAD_ARGUMENT', `archive id must be 16 lowercase hex chars, got ${JSON.stringify(hex)}`);
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
