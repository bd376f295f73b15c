/**
 * The latest value of every recorded path, held by the recorder's path slots: a path is
 * looked up once per update (its slot), and the slot carries what the recorder needs of it
 * (its writer id, its latest value), instead of one map per concern. Read like a
 * ReadonlyMap (get, has, keys in order of first recording, size) by the state queries.
 */
import type { Value } from '../protocol/value.js';

export class LatestValues {
  /** Slot of every path the recorder keeps (recorded or about to be). */
  private readonly slotOf = new Map<string, number>();
  private readonly paths: string[] = [];
  /** The latest value of each slot; undefined until its first update is recorded. */
  private readonly values: Array<Value | undefined> = [];
  /** Slots, and their paths, in order of their first recorded update (Map order, as the state answers list them). */
  private readonly order: number[] = [];
  private readonly orderPaths: string[] = [];

  /** Paths with a recorded value. */
  get size(): number {
    return this.order.length;
  }

  /** The slot of `path`, or -1 when it has none yet. */
  slot(path: string): number {
    return this.slotOf.get(path) ?? -1;
  }

  /** A new slot for `path` (not in the map yet: no value until set). */
  addSlot(path: string): number {
    const s = this.paths.length;
    this.paths.push(path);
    this.values.push(undefined);
    this.slotOf.set(path, s);
    return s;
  }

  /** Records `v` as the latest value of slot `s`. */
  setSlot(s: number, v: Value): void {
    if (this.values[s] === undefined) {
      this.order.push(s);
      this.orderPaths.push(this.paths[s] as string);
    }
    this.values[s] = v;
  }

  get(path: string): Value | undefined {
    const s = this.slotOf.get(path);
    return s === undefined ? undefined : this.values[s];
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  /** An array's own iterator: an answer listing every path walks it at native speed. */
  keys(): IterableIterator<string> {
    return this.orderPaths.values();
  }

  *entries(): IterableIterator<[string, Value]> {
    for (const s of this.order) yield [this.paths[s] as string, this.values[s] as Value];
  }

  [Symbol.iterator](): IterableIterator<[string, Value]> {
    return this.entries();
  }
}
