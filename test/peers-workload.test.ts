/**
 * The peer harness's workload file (bench/peers/workload-file.ts): what every side reads must
 * be exactly what the generators made, and a damaged file must be refused, not half-read.
 * The harness itself (cargo, netidx, timings) is run by hand, never here.
 */
import { describe, expect, it } from 'vitest';
import { decodeWorkload, encodeWorkload, workloadUpdates, type Workload } from '../bench/peers/workload-file.js';
import { fabricWorkload, mixedWorkload, seekInstants } from '../bench/peers/workloads.js';

function small(): Workload {
  return {
    name: 'small',
    paths: ['/a', '/b/é', '/c'],
    pool: [
      { ids: Uint32Array.from([0, 2]), values: Float64Array.from([1.5, -0]) },
      { ids: Uint32Array.from([1]), values: Float64Array.from([Number.MAX_VALUE]) },
    ],
    ts: Float64Array.from([1_763_000_000_000_001, 1_763_000_000_000_002, 1_763_000_000_000_003]),
  };
}

describe('peer workload file', () => {
  it('reads back the paths, columns and timestamps it was given, bit for bit', () => {
    const w = small();
    const back = decodeWorkload('small', encodeWorkload(w));
    expect(back.paths).toEqual(w.paths);
    expect(back.ts).toEqual(w.ts);
    expect(back.pool.map((b) => [...b.ids])).toEqual([[0, 2], [1]]);
    expect(Object.is(back.pool[0]?.values[1], -0)).toBe(true);
    expect(back.pool[1]?.values[0]).toBe(Number.MAX_VALUE);
    expect(workloadUpdates(back)).toBe(5); // batches 0, 1, 2 use pool 0, 1, 0
  });

  it('refuses a file with the wrong magic, a truncated one and one with trailing bytes', () => {
    const bytes = encodeWorkload(small());
    const wrongMagic = bytes.slice();
    wrongMagic[0] = 0x58;
    expect(() => decodeWorkload('x', wrongMagic)).toThrow(/not a workload file/);
    for (const cut of [9, 20, bytes.length - 1]) expect(() => decodeWorkload('x', bytes.subarray(0, cut))).toThrow(RangeError);
    const longer = new Uint8Array(bytes.length + 3);
    longer.set(bytes);
    expect(() => decodeWorkload('x', longer)).toThrow(/3 trailing bytes/);
  });

  it('makes the fabric workload: 64 switches x 8 counters, one full matrix per second', () => {
    const w = decodeWorkload('fabric', encodeWorkload(fabricWorkload(0.01)));
    expect(w.paths).toHaveLength(512);
    expect(w.ts).toHaveLength(36);
    expect(w.pool).toHaveLength(36);
    for (const b of w.pool) expect(b.ids).toHaveLength(512);
    const steps = Array.from(w.ts.subarray(1), (t, i) => t - (w.ts[i] as number));
    for (const s of steps) expect(Math.abs(s - 1_000_000)).toBeLessThan(5000);
  });

  it('makes the mixed workload: 100 two-place decimals per batch over 10 000 paths', () => {
    const w = mixedWorkload(250_000);
    expect(w.paths).toHaveLength(10_000);
    expect(w.ts).toHaveLength(2500);
    expect(workloadUpdates(w)).toBe(250_000);
    for (const b of w.pool.slice(0, 50)) {
      expect(b.ids).toHaveLength(100);
      for (const v of b.values) expect(Math.round(v * 100) / 100).toBe(v);
    }
  });

  it('seeks to the same instants for the same seed, inside the workload', () => {
    const w = small();
    const a = seekInstants(w, 50, 7);
    expect(seekInstants(w, 50, 7)).toEqual(a);
    expect(seekInstants(w, 50, 8)).not.toEqual(a);
    for (const t of a) expect(t >= (w.ts[0] as number) && t <= (w.ts[2] as number)).toBe(true);
  });
});
