/**
 * Shared cache of decoded blocks, so that many cursors reading the same stretch of an
 * archive decode each block once. Bounded by the number of decoded updates it holds
 * (STORAGE_LIMITS.decodedCacheUpdatesMax) and by their weight in bytes (decodedCacheBytesMax:
 * blocks of large strings or bytes); least recently used blocks go first.
 *
 * A block evicted from it may still be held by a cursor (a paced session holds the block it
 * plays from for as long as it takes to play it). Such blocks stay findable through weak
 * references: a reader asking for one gets the copy that is still alive instead of decoding
 * another (which it would then hold alongside). Without this, more readers than the cache
 * holds blocks for, spread over the archive, turn its LRU into a cycle of misses where each
 * reader decodes and holds a private copy of blocks others hold too: 512 paced sessions over
 * 64 blocks of 32 768 updates held 512 copies (docs/storage.md, "Block cache"). Memory is
 * then the distinct blocks readers hold plus the cache, never a copy per reader. The weak
 * entries cost a key and a WeakRef each; a FinalizationRegistry removes them once their
 * block is collected, and at most STORAGE_LIMITS.decodedWeakBlocksMax are kept (oldest
 * evictions forgotten first).
 *
 * Decoded blocks are never mutated after decoding, so handing one to several readers is safe.
 */
import type { DecodedBatches } from './codec/payload.js';
import { STORAGE_LIMITS } from './limits.js';

/** Bytes a decoded block is taken to hold, by block (set when loaded, read again when revived). */
const weights = new WeakMap<DecodedBatches, number>();

/** Per decoded update besides its value's own bytes: its id, its slot, a boxed number. */
const UPDATE_WEIGHT_BYTES = 24;

/**
 * A decoded block's weight in bytes: its updates, and twice its raw payload (a string's
 * characters take one or two bytes each in memory, at most twice its UTF-8; a number's raw
 * bytes are far under its slot, which UPDATE_WEIGHT_BYTES counts).
 */
function weightOf(d: DecodedBatches, rawBytes: number): number {
  return d.ids.length * UPDATE_WEIGHT_BYTES + 2 * rawBytes;
}

export class BlockCache {
  private readonly map = new Map<string, DecodedBatches>();
  private readonly inflight = new Map<string, Promise<DecodedBatches>>();
  /** Blocks evicted from `map`, reachable while some reader still holds them. */
  private readonly evicted = new Map<string, WeakRef<DecodedBatches>>();
  private readonly collected = new FinalizationRegistry<{ key: string; ref: WeakRef<DecodedBatches> }>((held) => {
    this.registrations--;
    // Only the entry for this very block: the key may have been evicted again since, with another copy.
    if (this.evicted.get(held.key) === held.ref) this.evicted.delete(held.key);
  });
  /**
   * Registrations alive in `collected`: exactly one per `evicted` entry. A registration not
   * removed when its entry goes (revived, replaced) would live as long as its block, and a
   * block held by a reader and evicted and revived over and over would gather them without
   * bound.
   */
  private registrations = 0;
  private updates = 0;
  private bytes = 0;

  constructor(
    private readonly updatesMax: number,
    private readonly weakBlocksMax: number = STORAGE_LIMITS.decodedWeakBlocksMax,
    private readonly bytesMax: number = STORAGE_LIMITS.decodedCacheBytesMax,
  ) {}

  /** A decoded block already held (by the cache or a reader), without loading or reordering anything. */
  peek(key: string): DecodedBatches | undefined {
    return this.map.get(key) ?? this.evicted.get(key)?.deref();
  }

  /**
   * The block at `key`, loaded by `load` when no reader holds it. `rawBytes` (called once
   * loaded) is its payload's raw length, which the block's weight in bytes counts.
   */
  async get(key: string, load: () => Promise<DecodedBatches>, rawBytes?: () => number): Promise<DecodedBatches> {
    const hit = this.map.get(key);
    if (hit) {
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const alive = this.revive(key);
    if (alive) return alive;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = load().then(
      (d) => {
        this.inflight.delete(key);
        weights.set(d, weightOf(d, rawBytes?.() ?? 0));
        this.put(key, d);
        return d;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  /** An evicted block some reader still holds, put back at the cache's recent end; undefined if gone. */
  private revive(key: string): DecodedBatches | undefined {
    const ref = this.evicted.get(key);
    if (ref === undefined) return undefined;
    this.unweak(key, ref);
    const d = ref.deref();
    if (d !== undefined) this.put(key, d);
    return d;
  }

  private put(key: string, d: DecodedBatches): void {
    const cost = d.ids.length + 1;
    const weight = weights.get(d) ?? 0;
    if (cost > this.updatesMax || weight > this.bytesMax) {
      this.forget(key, d);
      return;
    }
    this.map.set(key, d);
    this.updates += cost;
    this.bytes += weight;
    for (const [k, v] of this.map) {
      if (this.updates <= this.updatesMax && this.bytes <= this.bytesMax) break;
      this.map.delete(k);
      this.updates -= v.ids.length + 1;
      this.bytes -= weights.get(v) ?? 0;
      this.forget(k, v);
    }
  }

  /** Keeps a weak reference to a block leaving the cache (or too large for it). */
  private forget(key: string, d: DecodedBatches): void {
    const previous = this.evicted.get(key);
    if (previous !== undefined) this.unweak(key, previous);
    const ref = new WeakRef(d);
    this.evicted.set(key, ref);
    this.collected.register(d, { key, ref }, ref);
    this.registrations++;
    for (const [k, r] of this.evicted) {
      if (this.evicted.size <= this.weakBlocksMax) break;
      this.unweak(k, r);
    }
  }

  /** Removes a weak entry and its registration (whose holdings would otherwise live as long as the block). */
  private unweak(key: string, ref: WeakRef<DecodedBatches>): void {
    this.evicted.delete(key);
    if (this.collected.unregister(ref)) this.registrations--;
  }

  /** Weak entries and the registrations behind them (equal unless one leaked; for tests and stats). */
  get weakEntries(): { entries: number; registrations: number } {
    return { entries: this.evicted.size, registrations: this.registrations };
  }

  /** Drops every block of one file, every generation (keys `seq.gen:offset`; after it was rewritten). */
  dropFile(seq: number): void {
    const prefix = `${seq}.`;
    for (const [k, v] of this.map) {
      if (k.startsWith(prefix)) {
        this.map.delete(k);
        this.updates -= v.ids.length + 1;
        this.bytes -= weights.get(v) ?? 0;
      }
    }
    for (const [k, r] of this.evicted) {
      if (k.startsWith(prefix)) this.unweak(k, r);
    }
  }
}
