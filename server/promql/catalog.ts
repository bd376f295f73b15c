/**
 * Which archive paths a selector selects. Each path's series (server/promql/labels.ts) is
 * worked out once and kept with an index by metric name and one by label pair (postings, as
 * Prometheus' index has), extended with the paths defined since the last query (the
 * archive's path dictionary only grows): a selector looks only at the series of its
 * smallest `label="value"` list (`instance="i17"`: one or two), never at every path of the
 * archive. Memory: one label set per path and its id in one list per label, alongside the
 * path dictionary the archive holds already.
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
  /** Ids by label name then value, in id order (`__name__` is byName). */
  readonly postings = new Map<string, Map<string, number[]>>();
  /** Each metric name's place in byName's order (the order selections without a name list them in). */
  readonly nameRank = new Map<string, number>();

  constructor(private readonly archive: Archive) {}

  refresh(): void {
    const paths = this.archive.paths;
    for (let id = this.indexed; id < paths.length; id++) {
      const m = metricOfPath(paths[id] as string);
      this.byId.push(m);
      const name = labelValue(m, '__name__');
      let ids = this.byName.get(name);
      if (!ids) {
        this.byName.set(name, (ids = []));
        this.nameRank.set(name, this.nameRank.size);
      }
      ids.push(id);
      for (const [label, value] of m.labels) {
        if (label === '__name__') continue;
        let values = this.postings.get(label);
        if (!values) this.postings.set(label, (values = new Map()));
        let list = values.get(value);
        if (!list) values.set(value, (list = []));
        list.push(id);
      }
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

/**
 * Builds (or extends) the archive's series catalog now, so that the next selection finds it
 * built (server/promql/prepare.ts, at start). Synchronous: a selection never sees it half
 * built. Returns the paths it holds.
 */
export function prepareCatalog(archive: Archive): number {
  return indexOf(archive).byId.length;
}

/**
 * Ids that may match, in the order selections list them: by metric name in byName's order,
 * ids in order within a name. The shortest list of an equality matcher on a non-empty value
 * (an absent label reads as "", so `label=""` has no list) when one is shorter than the
 * names' lists; every other matcher is still tested on each.
 */
function candidateIds(ix: SeriesIndex, matchers: readonly LabelMatcher[], testNames = true): number[] {
  const nameMatcher = matchers.find((m) => m.name === '__name__');
  let shortest: number[] | undefined = nameMatcher?.op === '=' ? (ix.byName.get(nameMatcher.value) ?? []) : undefined;
  for (const m of matchers) {
    if (m.op !== '=' || m.value === '' || m.name === '__name__') continue;
    const list = ix.postings.get(m.name)?.get(m.value) ?? [];
    if (shortest === undefined || list.length < shortest.length) shortest = list;
  }
  if (shortest !== undefined && (nameMatcher?.op === '=' || shortest.length < ix.byId.length / 4)) {
    // Within one name, id order is the order; across names, byName's.
    if (nameMatcher?.op === '=') return shortest;
    const rank = (id: number): number => ix.nameRank.get(labelValue(ix.byId[id] as Metric, '__name__')) as number;
    return [...shortest].sort((x, y) => rank(x) - rank(y) || x - y);
  }
  const out: number[] = [];
  for (const [name, ids] of ix.byName) if (!testNames || !nameMatcher || nameMatcher.test(name)) for (const id of ids) out.push(id);
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


/**
 * selectSeries that lets other requests run: a matcher costs O(regex × value) per series
 * (server/promql/regex.ts), so a regex over a large catalog took seconds in one piece. It
 * yields at the budget's slices and gives up at its deadline. Same series, same order: the
 * name matcher is tested on each candidate rather than on each name beforehand.
 */
export async function selectSeriesSliced(archive: Archive, matchers: readonly LabelMatcher[], limit: number, onLimit: () => Error, budget: { slice(): Promise<void>; due(): boolean }): Promise<SeriesRef[]> {
  const ix = indexOf(archive);
  const out: SeriesRef[] = [];
  const ids = candidateIds(ix, matchers, false);
  for (let k = 0; k < ids.length; k++) {
    // Asked at every series (a clock read): one series may cost milliseconds, and 64 of
    // them between two checks held the event loop (and a client's leaving unseen) 0.5 s.
    if (budget.due()) await budget.slice();
    const id = ids[k] as number;
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
