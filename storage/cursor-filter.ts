/**
 * A cursor's filter (storage/cursor.ts): which path ids its globs select, decided once per
 * id and kept in a byte per id, and what a decoded block's batch looks like through it.
 * Without globs every id is selected and nothing is kept.
 */
import { compileSpec, type PathMatcher } from '../protocol/glob.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import type { DecodedBatches } from './codec/payload.js';

export class CursorFilter {
  readonly matcher: PathMatcher | undefined;
  /** Blocks are read with only the selected paths' updates (CursorOptions.selective). */
  readonly selective: boolean;
  /** Per path id: 0 = not yet checked, 1 = matches the filter, 2 = does not. */
  private match = new Uint8Array(0);
  /** matches(), bound once (the state's column reader keeps a shape per keep function). */
  readonly coversFn = (id: number): boolean => this.matches(id);

  constructor(
    private readonly paths: readonly string[],
    filter: readonly string[] | undefined,
    selective: boolean,
  ) {
    this.matcher = filter && filter.length > 0 ? compileSpec(filter) : undefined;
    this.selective = selective && this.matcher !== undefined;
  }

  /** The keep function of column readers: null when every path is selected. */
  get covers(): ((id: number) => boolean) | null {
    return this.matcher ? this.coversFn : null;
  }

  matches(id: number): boolean {
    if (!this.matcher) return true;
    if (id >= this.match.length) {
      const next = new Uint8Array(Math.max(id + 1, this.paths.length, this.match.length * 2));
      next.set(this.match);
      this.match = next;
    }
    let m = this.match[id] as number;
    if (m === 0) {
      m = this.matcher(this.paths[id] as string) ? 1 : 2;
      this.match[id] = m;
    }
    return m === 1;
  }

  /**
   * Batch k of a decoded block is visible through the filter: it holds a selected update,
   * or no update at all (a batch recorded empty is a batch); with `selective`, blocks hold
   * only selected updates and empty batches are passed over.
   */
  visible(d: DecodedBatches, starts: Uint32Array, k: number): boolean {
    if (!this.matcher) return true;
    if (this.selective) return (starts[k + 1] as number) > (starts[k] as number);
    for (let i = starts[k] as number; i < (starts[k + 1] as number); i++) if (this.matches(d.ids[i] as number)) return true;
    return (starts[k + 1] as number) === (starts[k] as number);
  }

  /** Batch k of a decoded block as [path, value] pairs of its selected updates; undefined when it has updates and none is selected. */
  batchAt(d: DecodedBatches, starts: Uint32Array, k: number): Batch | undefined {
    const from = starts[k] as number;
    const to = starts[k + 1] as number;
    const paths = this.paths;
    const updates: Update[] = [];
    for (let i = from; i < to; i++) {
      const id = d.ids[i] as number;
      if (this.matcher && !this.matches(id)) continue;
      updates.push([paths[id] as string, d.values[i] as Value]);
    }
    if (this.matcher && updates.length === 0 && to > from) return undefined;
    return { ts: d.ts[k] as number, updates };
  }

  /** Every selected path that ever appeared in the archive. */
  coveredPaths(): string[] {
    const out: string[] = [];
    for (let id = 0; id < this.paths.length; id++) if (this.matches(id)) out.push(this.paths[id] as string);
    return out;
  }
}
