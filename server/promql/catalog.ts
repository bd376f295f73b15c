/**
 * Which archive paths a selector selects. Each path's series (server/promql/labels.ts) is
 * worked out once and kept with an index by metric name, extended with the paths defined
 * since the last query (the archive's path dictionary only grows), so a selector with a
 * metric name looks only at that metric's series, never at every path of the archive.
 * Memory: one label set per path, alongside the path dictionary the archive holds already.
 */
import type { Archive } from '../../storage/index.js';
import type { LabelMatcher } from './ast.js';
import { labelValue, metricOfPath, type Metric } from './labels.js';

export interface SeriesRef {
  readonly id: number;
  readonly metric: Metric;
}

class SeriesIndex {
  private indexed = 0;
  readonly byId: Metric[] = [];
  readonly byName = new Map<string, number[]>();

  constructor(private readonly archive: Archive) {}

  refresh(): void {
    const paths = this.archive.paths;
    for (let id = this.indexed; id < paths.length; id++) {
      const m = metricOfPath(paths[id] as string);
      this.byId.push(m);
      const name = labelValue(m, '__name__');
      let ids = this.byName.get(name);
      if (!ids) this.byName.set(name, (ids = []));
      ids.push(id);
    }
    this.indexed = paths.length;
  }
}

const indexes = new WeakMap<Archive, SeriesIndex>();

function indexOf(archive: Archive): SeriesIndex {
  let ix = indexes.get(archive);
  if (!ix) indexes.set(archive, (ix = new SeriesIndex(archive)));
  ix.refresh();
  return ix;
}

/** Ids of the metric names a name matcher lets through (all names when there is none). */
function candidateIds(ix: SeriesIndex, matchers: readonly LabelMatcher[]): Iterable<number> {
  const nameMatcher = matchers.find((m) => m.name === '__name__');
  if (nameMatcher?.op === '=') return ix.byName.get(nameMatcher.value) ?? [];
  const out: number[] = [];
  for (const [name, ids] of ix.byName) if (!nameMatcher || nameMatcher.test(name)) for (const id of ids) out.push(id);
  return out;
}

/** The series whose label sets pass every matcher (an absent label reads as ""). */
export function selectSeries(archive: Archive, matchers: readonly LabelMatcher[], limit: number, onLimit: () => Error): SeriesRef[] {
  const ix = indexOf(archive);
  const out: SeriesRef[] = [];
  for (const id of candidateIds(ix, matchers)) {
    const metric = ix.byId[id] as Metric;
    if (!matchers.every((m) => m.test(labelValue(metric, m.name)))) continue;
    if (out.length >= limit) throw onLimit();
    out.push({ id, metric });
  }
  return out;
}

/** First-seen time (µs) of a path: a series exists from then on. */
export function firstSeenUs(archive: Archive, id: number): number {
  return archive.pathFirstTs[id] ?? Number.MAX_SAFE_INTEGER;
}
