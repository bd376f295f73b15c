/**
 * Shared cache of decoded blocks, so that many cursors reading the same stretch of an
 * archive decode each block once. Bounded by the number of decoded updates it holds
 * (STORAGE_LIMITS.decodedCacheUpdatesMax); least recently used blocks go first.
 */
import type { DecodedBatches } from './codec/payload.js';

export class BlockCache {
  private readonly map = new Map<string, DecodedBatches>();
  private readonly inflight = new Map<string, Promise<DecodedBatches>>();
  private updates = 0;

  constructor(private readonly updatesMax: number) {}

  /** A decoded block already held, without loading or reordering anything. */
  peek(key: string): DecodedBatches | undefined {
    return this.map.get(key);
  }

  async get(key: string, load: () => Promise<DecodedBatches>): Promise<DecodedBatches> {
    const hit = this.map.get(key);
    if (hit) {
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = load().then(
      (d) => {
        this.inflight.delete(key);
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

  private put(key: string, d: DecodedBatches): void {
    const cost = d.ids.length + 1;
    if (cost > this.updatesMax) return;
    this.map.set(key, d);
    this.updates += cost;
    for (const [k, v] of this.map) {
      if (this.updates <= this.updatesMax) break;
      this.map.delete(k);
      this.updates -= v.ids.length + 1;
    }
  }

  /** Drops every block of one file (after it was rewritten or went remote). */
  dropFile(seq: number): void {
    const prefix = `${seq}:`;
    for (const [k, v] of this.map) {
      if (k.startsWith(prefix)) {
        this.map.delete(k);
        this.updates -= v.ids.length + 1;
      }
    }
  }
}
