/**
 * The new column kinds through a real archive: written by the writer (block builder,
 * frames, LZ4, fsync), read back by a cursor from a reopened archive.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { tmpDir } from './helpers/tmp.js';
import { readAll } from './helpers/replay.js';
import { rng } from './helpers/workload.js';
import type { Update, Value } from '../protocol/value.js';

function float(hi: number, lo: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setUint32(4, hi, true);
  view.setUint32(0, lo, true);
  return view.getFloat64(0, true);
}

function bitsOf(v: unknown): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v as number, true);
  return view.getUint32(4, true).toString(16) + ':' + view.getUint32(0, true).toString(16);
}

describe('column kinds through an archive', () => {
  it("reads back gauges, counters, noisy floats and Prometheus' stale NaN bit-exact after reopening", async () => {
    const dir = await tmpDir();
    const r = rng(77);
    const stale = float(0x7ff00000, 2);
    const sent: Array<{ ts: number; updates: Update[] }> = [];
    let a = await Archive.open(dir, {});
    let gauge = 120;
    let counter = 1e9;
    let noisy = 0.5;
    for (let i = 0; i < 3000; i++) {
      gauge = Math.round((gauge + (r() - 0.5) * 3) * 10) / 10;
      counter += Math.floor(r() * 150_000);
      noisy += (r() - 0.5) * 0.01;
      // Tuples are [string, number]: generic arrays, so the NaN's payload survives here.
      const updates: Update[] = [['/g', gauge], ['/c', counter], ['/f', noisy], ['/s', i % 100 === 50 ? stale : 1.25 * i]];
      const ts = 1_700_000_000_000_000 + i * 15_000_000;
      a.writer!.append(updates, ts);
      sent.push({ ts, updates });
    }
    await a.close();
    a = await Archive.open(dir, { readonly: true });
    const got = await readAll(a.cursor());
    await a.close();
    expect(got.length).toBe(sent.length);
    got.forEach((b, i) => {
      const want = sent[i]!;
      expect(b.ts).toBe(want.ts);
      const byPath = new Map<string, Value>(b.updates as Update[]);
      for (const [p, v] of want.updates) expect(bitsOf(byPath.get(p)), `${p} in batch ${i}`).toBe(bitsOf(v));
    });
  });
});
