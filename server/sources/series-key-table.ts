/**
 * Byte ranges -> entries: the remote-write source's cache of known series, keyed by the raw
 * bytes of a series' labels (server/sources/remote-write.ts).
 *
 * Why not a Map keyed by a string of those bytes (as before): a lookup then made a string
 * of about 100 bytes per series (a call into Buffer's latin1 decoder), hashed it and
 * compared it, about 0.5 µs a series, the largest part of a request's CPU. Here the bytes
 * are hashed and compared where they lie, four at a time, in an open-addressing table of
 * Int32Arrays whose keys are copied into one arena.
 *
 * The hash is seeded at random per table, so a sender cannot choose label sets that all
 * land in one chain. A table holds at most what its owner allows (it clears it: the source
 * starts afresh past remoteWriteSeriesCachedMax, as before).
 */
import { randomBytes } from 'node:crypto';

const EMPTY = 0;
const FIRST_SLOTS = 1024;
const FIRST_ARENA_BYTES = 64 * 1024;

export class SeriesKeyTable<T> {
  private slots = new Int32Array(FIRST_SLOTS);
  private mask = FIRST_SLOTS - 1;
  private hashes = new Int32Array(FIRST_SLOTS / 2);
  private keyOff = new Int32Array(FIRST_SLOTS / 2);
  private keyLen = new Int32Array(FIRST_SLOTS / 2);
  private readonly entries: T[] = [];
  private arena = new Uint8Array(FIRST_ARENA_BYTES);
  private arenaDv = new DataView(this.arena.buffer);
  private arenaUsed = 0;
  private readonly seed = randomBytes(4).readInt32LE(0);
  /** The hash of the last key looked up (get), for the add that follows a miss. */
  private lastHash = 0;

  get size(): number {
    return this.entries.length;
  }

  /** Bytes of the keys held. */
  get bytes(): number {
    return this.arenaUsed;
  }

  /** The entry of the key bytes[start, end), or undefined. */
  get(bytes: Uint8Array, dv: DataView, start: number, end: number): T | undefined {
    const h = this.hash(bytes, dv, start, end);
    this.lastHash = h;
    const len = end - start;
    for (let s = h & this.mask; ; s = (s + 1) & this.mask) {
      const e = this.slots[s] as number;
      if (e === EMPTY) return undefined;
      const i = e - 1;
      if (this.hashes[i] === h && this.keyLen[i] === len && this.sameBytes(bytes, dv, start, len, this.keyOff[i] as number)) return this.entries[i];
    }
  }

  /** Adds the key bytes[start, end), which the last get missed, with its entry. */
  add(bytes: Uint8Array, start: number, end: number, entry: T): void {
    const len = end - start;
    const i = this.entries.length;
    if (i >= this.hashes.length) this.growEntries();
    if (this.arenaUsed + len > this.arena.length) this.growArena(len);
    this.arena.set(bytes.subarray(start, end), this.arenaUsed);
    this.hashes[i] = this.lastHash;
    this.keyOff[i] = this.arenaUsed;
    this.keyLen[i] = len;
    this.arenaUsed += len;
    this.entries.push(entry);
    if (2 * this.entries.length > this.slots.length) this.rehash(this.slots.length * 2);
    else this.place(i);
  }

  clear(): void {
    this.slots = new Int32Array(FIRST_SLOTS);
    this.mask = FIRST_SLOTS - 1;
    this.hashes = new Int32Array(FIRST_SLOTS / 2);
    this.keyOff = new Int32Array(FIRST_SLOTS / 2);
    this.keyLen = new Int32Array(FIRST_SLOTS / 2);
    this.entries.length = 0;
    this.arena = new Uint8Array(FIRST_ARENA_BYTES);
    this.arenaDv = new DataView(this.arena.buffer);
    this.arenaUsed = 0;
  }

  /** A seeded multiply-xorshift hash of the bytes, four at a time. */
  private hash(bytes: Uint8Array, dv: DataView, start: number, end: number): number {
    let h = this.seed ^ (end - start);
    let p = start;
    for (; p + 4 <= end; p += 4) {
      h = Math.imul(h ^ dv.getInt32(p, true), 0x5bd1e995);
      h ^= h >>> 15;
    }
    for (; p < end; p++) {
      h = Math.imul(h ^ (bytes[p] as number), 0x5bd1e995);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0x85ebca6b);
    return h ^ (h >>> 16);
  }

  private sameBytes(bytes: Uint8Array, dv: DataView, start: number, len: number, off: number): boolean {
    const arenaDv = this.arenaDv;
    let j = 0;
    for (; j + 4 <= len; j += 4) if (dv.getInt32(start + j, true) !== arenaDv.getInt32(off + j, true)) return false;
    const arena = this.arena;
    for (; j < len; j++) if (bytes[start + j] !== arena[off + j]) return false;
    return true;
  }

  private place(i: number): void {
    let s = (this.hashes[i] as number) & this.mask;
    while (this.slots[s] !== EMPTY) s = (s + 1) & this.mask;
    this.slots[s] = i + 1;
  }

  private rehash(slots: number): void {
    this.slots = new Int32Array(slots);
    this.mask = slots - 1;
    for (let i = 0; i < this.entries.length; i++) this.place(i);
  }

  private growEntries(): void {
    const n = this.hashes.length * 2;
    const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.hashes = grow(this.hashes);
    this.keyOff = grow(this.keyOff);
    this.keyLen = grow(this.keyLen);
  }

  private growArena(need: number): void {
    const next = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + need));
    next.set(this.arena.subarray(0, this.arenaUsed));
    this.arena = next;
    this.arenaDv = new DataView(next.buffer);
  }
}
