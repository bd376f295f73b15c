/**
 * NaN payloads through every storage reader of an archive of numbers only. V8 changes a NaN
 * stored in an array that holds only doubles (protocol/value.ts valueArray), and whether a
 * given array is one depends on what its allocation site saw before: in archives of mixed
 * values the sites see strings and nulls first and the loss hides. Here nothing but numbers
 * ever passes (this file runs in a process of its own), so a reader that puts values in such
 * an array loses bits every time. Covered: a writer's restart (its state is read back from the
 * archive and written again in the images after it), reads forward, seeks by time with the
 * state there (as a Map by path, and by id through entries, values, forEach and get), the
 * first read after each seek, steps back, and column reads. Seeded; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { FRAGILE_NANS, numberBits } from './helpers/nan.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const T0 = 1_765_000_000_000_000;
const bitsOf = numberBits;
const FRAGILE = FRAGILE_NANS;

interface Recorded {
  ts: number;
  pairs: [string, number][];
}

/** Batches of numbers only: polls of every path (pairs or columns), ragged subsets, fragile NaNs now and then. */
function workload(seed: number, from: number, count: number): Recorded[] {
  const r = rng(seed * 7919 + from);
  const paths = Array.from({ length: 48 }, (_, i) => `/dev${i % 4}/if${i}/octets`);
  const out: Recorded[] = [];
  for (let b = from; b < from + count; b++) {
    const some = b % 5 === 3 ? paths.filter(() => r() < 0.3) : paths;
    const pairs = some.map((p): [string, number] => [p, r() < 0.12 ? (FRAGILE[Math.floor(r() * FRAGILE.length)] as number) : Math.round(r() * 1e6) / 100]);
    // Paths polled once, before the restart: later states read them from the images.
    if (b < 40) pairs.push([`/once/p${b}`, FRAGILE[b % FRAGILE.length] as number]);
    out.push({ ts: T0 + b * 1_000_000, pairs });
  }
  return out;
}

function write(a: Archive, batches: Recorded[]): void {
  const w = a.writer!;
  for (const [i, b] of batches.entries()) {
    if (i % 2 === 0) {
      w.append(b.pairs, b.ts);
    } else {
      const ids = Uint32Array.from(b.pairs, ([p]) => w.pathId(p));
      w.appendColumns(ids, Float64Array.from(b.pairs, ([, v]) => v), b.ts);
    }
  }
}

/** Latest value of every path after batches [0, n), as bits. */
function stateAfter(batches: Recorded[], n: number): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < n; i++) for (const [p, v] of (batches[i] as Recorded).pairs) out.set(p, bitsOf(v));
  return out;
}

const sorted = (m: Map<string, string>): [string, string][] => [...m].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));

describe('NaN payloads in an archive of numbers only', () => {
  it('come back bit for bit from a restart, reads, seeks, states, steps back and column reads', async () => {
    const seed = scheduleSeed('NAN_BITS_SEED', 'NaN payloads through the readers');
    const dir = await tmpDir();
    const opts = { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024, rotateSizeBytes: 96 * 1024 };
    const first = workload(seed, 0, 400);
    const second = workload(seed, 400, 400);
    const all = [...first, ...second];
    let a = await Archive.open(dir, opts);
    write(a, first);
    await a.close();
    // The restart: the writer reads its state back, and the images it writes later hold it.
    a = await Archive.open(dir, opts);
    write(a, second);
    await a.close();
    a = await Archive.open(dir, { readonly: true });
    try {
      const paths = a.paths;
      expect(all.flatMap((b) => b.pairs.map(([, v]) => bitsOf(v))).filter((x) => x === '7ff0000000000002').length, 'the workload holds stale markers').toBeGreaterThan(10);
      // The state at the end: paths polled once before the restart come from the images
      // written after it, from the state the writer read back at the restart.
      const end = a.cursor();
      await end.seek('end');
      const endState = await end.state();
      expect(sorted(new Map([...endState].map(([p, v]) => [p, bitsOf(v)]))), 'state at the end').toStrictEqual(sorted(stateAfter(all, all.length)));
      // Every batch, forward.
      const c = a.cursor();
      for (const [i, want] of all.entries()) {
        const got = await c.next();
        expect(got?.ts, `batch ${i}`).toBe(want.ts);
        expect(got?.updates.map(([p, v]) => `${p}=${bitsOf(v)}`), `batch ${i}`).toStrictEqual(want.pairs.map(([p, v]) => `${p}=${bitsOf(v)}`));
      }
      expect(await c.next()).toBeNull();

      // Column reads, forward.
      const cc = a.cursor();
      let at = 0;
      for (let view = await cc.nextColumns(); view !== null; view = await cc.nextColumns()) {
        for (let k = 0; k < view.batches; k++, at++) {
          const want = all[at] as Recorded;
          const got: string[] = [];
          let other = 0;
          for (let u = view.starts[k] as number; u < (view.starts[k + 1] as number); u++) {
            const isOther = other < view.otherCount && view.otherAt[other] === u;
            const v = isOther ? view.others[other++] : view.nums[u];
            got.push(`${paths[view.ids[u] as number]}=${bitsOf(v)}`);
          }
          expect(got, `column batch ${at}`).toStrictEqual(want.pairs.map(([p, v]) => `${p}=${bitsOf(v)}`));
        }
      }
      expect(at).toBe(all.length);

      // Seeks by time (mid-block and block starts, before and after the restart): the state
      // there in each of its forms, the first read after it, and steps back from it.
      const r = rng(seed);
      for (let round = 0; round < 60; round++) {
        const j = Math.floor(r() * all.length);
        const s = a.cursor();
        await s.seek({ ts: (all[j] as Recorded).ts });
        const state = await s.state();
        const byId = await s.stateById();
        const next = await s.next();
        const m = next === null ? all.length : all.findIndex((b) => b.ts === next.ts);
        expect(m, `seek to batch ${j}`).toBeGreaterThanOrEqual(0);
        const want = sorted(stateAfter(all, m));
        expect(sorted(new Map([...state].map(([p, v]) => [p, bitsOf(v)]))), `state at batch ${j}`).toStrictEqual(want);
        const entries = new Map<string, string>();
        for (const [id, v] of byId.entries()) entries.set(paths[id] as string, bitsOf(v));
        expect(sorted(entries), `entries at batch ${j}`).toStrictEqual(want);
        const viaValues = [...byId.values()].map(bitsOf);
        const viaKeys = [...byId.keys()].map((id) => bitsOf(byId.get(id)));
        expect(viaValues, `values at batch ${j}`).toStrictEqual(viaKeys);
        const viaForEach: string[] = [];
        byId.forEach((v) => viaForEach.push(bitsOf(v)));
        expect(viaForEach, `forEach at batch ${j}`).toStrictEqual(viaKeys);
        expect(sorted(new Map([...byId.keys()].map((id) => [paths[id] as string, bitsOf(byId.get(id))]))), `get at batch ${j}`).toStrictEqual(want);
        if (next !== null) {
          expect(next.updates.map(([p, v]) => `${p}=${bitsOf(v)}`), `first read after the seek to batch ${j}`).toStrictEqual((all[m] as Recorded).pairs.map(([p, v]) => `${p}=${bitsOf(v)}`));
          // Back: the batch read becomes the current one; -n lands n batches before it.
          const n = 1 + Math.floor(r() * 5);
          await s.seek({ batches: -n });
          const back = await s.state();
          expect(sorted(new Map([...back].map(([p, v]) => [p, bitsOf(v)]))), `state ${n} back from batch ${m}`).toStrictEqual(sorted(stateAfter(all, Math.max(0, m + 1 - n))));
        }
      }
    } finally {
      await a.close();
    }
  });
});
