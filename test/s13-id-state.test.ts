/**
 * storage/id-state.ts IdState, the state by path id that Cursor.stateById answers: what a
 * ReadonlyMap answers, against a real Map given the same sets (seeded; the seed is printed,
 * TPD_ID_STATE_SEED replays it), NaN payloads and -0 kept, ids past the hint, and ids that are
 * not ids (negative, fractional, past the end, NaN) absent; and a cursor's state through it.
 */
import { describe, expect, it } from 'vitest';
import { IdState } from '../storage/id-state.js';
import { Archive } from '../storage/archive.js';
import type { Value } from '../protocol/value.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

const SEED = scheduleSeed('TPD_ID_STATE_SEED', 's13-id-state');
const bitsOf = (x: number): bigint => new BigUint64Array(Float64Array.of(x).buffer)[0] as bigint;
const nanWithPayload = new Float64Array(new BigUint64Array([0x7ff8000000c0ffeen]).buffer)[0] as number;

describe('IdState', () => {
  it('answers as a Map given the same sets, in the order they were set', () => {
    const r = rng(SEED);
    for (let t = 0; t < 200; t++) {
      const hint = Math.floor(r() * 50);
      const s = new IdState(hint);
      const m = new Map<number, Value>();
      for (let j = Math.floor(r() * 120); j > 0; j--) {
        const id = Math.floor(r() * (hint + 30));
        const v: Value = r() < 0.3 ? `s${id}` : r() < 0.5 ? null : r() * 100;
        s.set(id, v);
        m.set(id, v);
      }
      expect(s.size).toBe(m.size);
      expect([...s]).toEqual([...m]);
      expect([...s.entries()]).toEqual([...m.entries()]);
      expect([...s.keys()]).toEqual([...m.keys()]);
      expect([...s.values()]).toEqual([...m.values()]);
      const seen: Array<[number, Value]> = [];
      s.forEach((v, k, map) => {
        expect(map).toBe(s);
        seen.push([k, v]);
      });
      expect(seen).toEqual([...m]);
      for (let id = -3; id < hint + 35; id++) {
        expect(s.has(id), `id ${id}`).toBe(m.has(id));
        expect(s.get(id), `id ${id}`).toBe(m.get(id));
      }
    }
  });

  it('keeps values bit for bit and answers absent for what is not an id', () => {
    const s = new IdState(4);
    s.set(0, nanWithPayload).set(1, -0).set(9, null);
    expect(bitsOf(s.get(0) as number)).toBe(0x7ff8000000c0ffeen);
    expect(Object.is(s.get(1), -0)).toBe(true);
    expect(s.has(9)).toBe(true);
    expect(s.get(9)).toBeNull();
    for (const id of [-1, 0.5, 4, 8, 10, 1e9, Number.NaN]) {
      expect(s.has(id), `id ${id}`).toBe(false);
      expect(s.get(id), `id ${id}`).toBeUndefined();
    }
    // A second set of an id keeps its place in the order.
    s.set(0, 1);
    expect([...s.keys()]).toEqual([0, 1, 9]);
  });

  it('is what a cursor answers for its state', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    a.writer!.append([['/a', 1], ['/b', 'x']], 1_000);
    a.writer!.append([['/a', 2]], 2_000);
    await a.writer!.flush();
    const c = a.cursor();
    await c.seek({ ts: 2_000 });
    const st = await c.stateById();
    expect(st).toBeInstanceOf(IdState);
    expect(new Map(st)).toEqual(new Map<number, Value>([[0, 2], [1, 'x']]));
    expect(await c.state()).toEqual(new Map<string, Value>([['/a', 2], ['/b', 'x']]));
    await a.close();
  });
});
