/**
 * Cache of one series' samples over one chunk of committed blocks (storage/series-read.ts),
 * so that a dashboard asking for the same series again (Grafana refreshing a panel every
 * few seconds) reads no block at all, or only the blocks committed since. Committed blocks
 * never change (the archive is append-only), so an entry is never invalidated: a chunk
 * still filling is extended, and entries leave only when the byte budget
 * (STORAGE_LIMITS.seriesCacheBytesMax) needs room, least recently used first.
 */
import type { Value } from '../protocol/value.js';

/** One series' updates in time order: numbers in `num` when every value is one, else in `values`. */
export interface SeriesRun {
  readonly n: number;
  /** Microseconds since the epoch, nondecreasing. */
  readonly ts: Float64Array;
  readonly num: Float64Array | undefined;
  readonly values: readonly Value[] | undefined;
}

/** A path's run over the first `blocks` delta blocks of a chunk (all of them once the chunk is full). */
export interface ChunkRun {
  readonly run: SeriesRun;
  readonly blocks: number;
}

export const EMPTY_RUN: SeriesRun = { n: 0, ts: new Float64Array(0), num: new Float64Array(0), values: undefined };

/** Bookkeeping of a Map entry, typed arrays' headers and the array objects themselves. */
const ENTRY_OVERHEAD_BYTES = 200;
/** A JS array slot plus a boxed number: what a non-numeric run costs per value, roughly. */
const VALUE_BYTES = 24;

export function runBytes({ run }: ChunkRun): number {
  return ENTRY_OVERHEAD_BYTES + run.n * (8 + (run.num ? 8 : VALUE_BYTES));
}

/** An entry in recency order (a doubly linked list: least recently used at the head). */
interface Node {
  key: string;
  run: ChunkRun;
  prev: Node | undefined;
  next: Node | undefined;
}

/**
 * Least recently used first, in O(1) per get and put: a Map for lookup and a linked list
 * for order. (Deleting a Map's oldest entries and iterating from its start again leaves
 * holes that every later iteration walks over: a cache that evicts on every put went
 * quadratic.)
 */
export class SeriesCache {
  private readonly map = new Map<string, Node>();
  private head: Node | undefined;
  private tail: Node | undefined;
  private bytes = 0;
  hits = 0;
  misses = 0;
  /** Blocks read to fill or extend entries. */
  blocksRead = 0;

  constructor(readonly bytesMax: number) {}

  get(key: string): ChunkRun | undefined {
    const node = this.map.get(key);
    if (node === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.unlink(node);
    this.append(node);
    return node.run;
  }

  put(key: string, run: ChunkRun): void {
    const cost = runBytes(run);
    if (cost > this.bytesMax) return;
    const old = this.map.get(key);
    if (old) {
      this.unlink(old);
      this.map.delete(key);
      this.bytes -= runBytes(old.run);
    }
    const node: Node = { key, run, prev: undefined, next: undefined };
    this.map.set(key, node);
    this.append(node);
    this.bytes += cost;
    while (this.bytes > this.bytesMax && this.head) {
      const lru = this.head;
      this.unlink(lru);
      this.map.delete(lru.key);
      this.bytes -= runBytes(lru.run);
    }
  }

  private unlink(n: Node): void {
    if (n.prev) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = n.next = undefined;
  }

  private append(n: Node): void {
    n.prev = this.tail;
    if (this.tail) this.tail.next = n;
    else this.head = n;
    this.tail = n;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get entries(): number {
    return this.map.size;
  }
}
