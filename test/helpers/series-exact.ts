/**
 * What readSeries gives, as plain data to compare: per path id, [time, exact value] (values
 * as helpers/values.ts exactValue writes them, NaN payloads and -0 kept apart). Tests compare
 * a read through per-series sidecars with one from the blocks.
 */
import type { Value } from '../../protocol/value.js';
import type { Archive } from '../../storage/index.js';
import { readSeries } from '../../storage/series-read.js';
import { exactValue } from './values.js';

/** Every path's samples in [fromUs, toUs] (all the archive's paths unless `ids`), through sidecars or not. */
export async function readSeriesExact(a: Archive, fromUs: number, toUs: number, sidecars: boolean, ids: readonly number[] = a.paths.map((_, id) => id)): Promise<Map<number, Array<[number, unknown]>>> {
  const out = new Map<number, Array<[number, unknown]>>();
  for await (const pieces of readSeries(a, ids, fromUs, toUs, { sidecars })) {
    for (const { id, run, from, to } of pieces) {
      if (!out.has(id)) out.set(id, []);
      for (let i = from; i < to; i++) out.get(id)?.push([run.ts[i] as number, exactValue(run.num ? (run.num[i] as number) : (run.values?.[i] as Value))]);
    }
  }
  return out;
}
