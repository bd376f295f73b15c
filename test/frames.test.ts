/**
 * The JSON batch frame encoder writes text by hand for speed; it must give exactly what
 * JSON.stringify of the frame object (values in their JSON form, protocol/value-json.ts)
 * gives, for every kind of value and path, and decode back to the same values.
 */
import { describe, expect, it } from 'vitest';
import { encodeJsonFrame, encodeJsonRawFrame, reviveValue } from '../protocol/frames.js';
import { valueToJson } from '../protocol/value-json.js';
import type { Value } from '../protocol/value.js';
import { randomBatches } from './helpers/workload.js';

const SPECIAL: Value[] = [0, -0, NaN, Infinity, -Infinity, 1e21, 5e-324, -1.5, 2 ** 53, 'plain', 'quote " backslash \\ newline \n tab \t', '\u2028 é 𝄞', '', true, false, null,
  new Uint8Array([0, 1, 255]), 123456789012345678901234567890n, [1, NaN, { a: -0 }], { nested: { b: [new Uint8Array([7])] } }, { $num: 'NaN' }, '\ud800'];

function reference(batches: Array<{ ts: number; updates: Array<[string, Value]> }>): string {
  const json = batches.map((b) => ({ ts: b.ts, updates: b.updates.map(([p, v]) => [p, valueToJson(v)]) }));
  const frame = json.length === 1 ? { type: 'batch', ...json[0] } : { type: 'batches', batches: json };
  const text = JSON.stringify(frame);
  // encodeJsonFrame (the object path) agrees with the hand-written text.
  expect(encodeJsonFrame(batches.length === 1 ? { type: 'batch', ...(batches[0] as { ts: number; updates: Array<[string, Value]> }) } : { type: 'batches', batches })).toBe(text);
  return text;
}

describe('JSON batch frames', () => {
  it('equal JSON.stringify of the frame for special values and odd paths, one batch and several', () => {
    const paths = ['/a', '/with "quotes"', '/back\\slash', '/ünï/cødé', '/line\nbreak'];
    const ids: number[] = [];
    const values: Value[] = [];
    SPECIAL.forEach((v, i) => {
      ids.push(i % paths.length);
      values.push(v);
    });
    const whole = { ts: 1_700_000_000_000_000, ids, values, from: 0, to: ids.length };
    const half = SPECIAL.length >> 1;
    const views = [{ ...whole, to: half }, { ...whole, ts: whole.ts + 1, from: half }];
    const pairs = (v: typeof whole): Array<[string, Value]> => ids.slice(v.from, v.to).map((id, k) => [paths[id] as string, values[v.from + k] as Value]);
    expect(encodeJsonRawFrame([whole], paths, undefined)).toBe(reference([{ ts: whole.ts, updates: pairs(whole) }]));
    expect(encodeJsonRawFrame(views, paths, undefined)).toBe(reference(views.map((v) => ({ ts: v.ts, updates: pairs(v) }))));
    // A filter leaves out ids, and a batch may end up empty.
    const odd = (id: number): boolean => id % 2 === 1;
    const filtered = views.map((v) => ({ ts: v.ts, updates: pairs(v).filter((_, k) => odd(ids[v.from + k] as number)) }));
    expect(encodeJsonRawFrame(views, paths, odd)).toBe(reference(filtered));
    expect(encodeJsonRawFrame([{ ...whole, to: 0 }], paths, undefined)).toBe(reference([{ ts: whole.ts, updates: [] }]));
    // And the text decodes back to the same values.
    const decoded = JSON.parse(encodeJsonRawFrame([whole], paths, undefined)) as { updates: Array<[string, unknown]> };
    decoded.updates.forEach(([p, v], k) => {
      expect(p).toBe(paths[ids[k] as number]);
      const want = values[k];
      if (typeof want === 'number') expect(Object.is(reviveValue(v), want)).toBe(true);
      else expect(reviveValue(v)).toEqual(want);
    });
  });

  it('equal JSON.stringify of the frame for random workloads', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const batches = randomBatches(seed, 50);
      const paths: string[] = [];
      const idOf = new Map<string, number>();
      const views = batches.map((b) => {
        const ids = b.updates.map(([p]) => idOf.get(p) ?? (idOf.set(p, paths.push(p) - 1), paths.length - 1));
        return { ts: b.ts, ids, values: b.updates.map((u) => u[1] as Value), from: 0, to: ids.length };
      });
      expect(encodeJsonRawFrame(views, paths, undefined)).toBe(reference(batches.map((b) => ({ ts: b.ts, updates: b.updates.map(([p, v]) => [p, v as Value]) }))));
    }
  });
});
