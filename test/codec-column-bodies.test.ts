/**
 * codec/column-bodies.ts: where each column body of a layout-2 payload lies. Checked against
 * the payload decoder: each body, decoded alone by the column decoder with its kind and
 * count, gives the path's values in update order (NaN payloads and -0 kept); a malformed
 * payload (cut anywhere, a byte more, layout 1) is refused with TPD_CORRUPT_BLOCK.
 *
 * COLUMN_BODIES_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { valueArray, type Value } from '../protocol/value.js';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { columnBodies } from '../storage/codec/column-bodies.js';
import { decodeColumnBody } from '../storage/codec/columns.js';
import { decodeBatches, encodeBatches } from '../storage/codec/payload.js';
import { FRAGILE_NANS } from './helpers/nan.js';
import { exactValue } from './helpers/values.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const SEED = scheduleSeed('COLUMN_BODIES_SEED', 'codec-column-bodies');

/** A block of `batches` batches over 12 paths: numbers of every kind, nulls, text, a path listed twice, repeated lists. */
function block(rand: () => number, batches: number): { raw: Uint8Array; ts: number[] } {
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const values = valueArray(0);
  let t = 1_700_000_000_000_000;
  let list: number[] = [];
  for (let b = 0; b < batches; b++) {
    t += 1 + Math.floor(rand() * 20_000_000);
    ts.push(t);
    // Now and then the same list again ("same as previous" batch).
    if (b === 0 || rand() < 0.7) {
      list = [];
      for (let id = 0; id < 12; id++) if (rand() < 0.6) list.push(id);
      if (rand() < 0.3) list.push(list[0] ?? 0); // a path listed twice
    }
    counts.push(list.length);
    for (const id of list) {
      ids.push(id);
      const r = rand();
      const v: Value =
        id % 6 === 0 ? b * 7 : id % 6 === 1 ? rand() * 1e9 : id % 6 === 2 ? (r < 0.3 ? (FRAGILE_NANS[Math.floor(rand() * FRAGILE_NANS.length)] as number) : r < 0.4 ? -0 : Math.round(r * 1e4) / 100) : id % 6 === 3 ? (r < 0.2 ? null : b) : id % 6 === 4 ? (r < 0.3 ? `t${b}` : b) : Math.round(rand() * 1e6);
      values.push(v);
    }
  }
  const raw = encodeBatches({ ts, counts, ids, values, batchCount: batches, updateCount: ids.length }, new ByteWriter(1 << 12)).slice();
  return { raw, ts };
}

/** Per path id, its values in update order, as the payload decoder gives them. */
function byPath(raw: Uint8Array, firstTs: number): Map<number, unknown[]> {
  const d = decodeBatches(raw, firstTs);
  const out = new Map<number, unknown[]>();
  d.ids.forEach((id, i) => {
    if (!out.has(id)) out.set(id, []);
    out.get(id)?.push(exactValue(d.values[i] as Value));
  });
  return out;
}

function refusal(raw: Uint8Array): string | undefined {
  try {
    columnBodies(raw);
    return undefined;
  } catch (err) {
    return isTapedeckError(err) ? err.code : `not a TapedeckError: ${String(err)}`;
  }
}

describe('column bodies of a layout-2 payload', () => {
  it('each body decoded alone gives its path\'s values, in order, bit for bit', () => {
    const rand = rng(SEED);
    for (let round = 0; round < 60; round++) {
      const { raw, ts } = block(rand, 1 + Math.floor(rand() * 40));
      const want = byPath(raw, ts[0] as number);
      const cols = columnBodies(raw);
      expect(cols.map((c) => c.id).sort((x, y) => x - y), `seed ${SEED} round ${round}`).toEqual([...want.keys()].sort((x, y) => x - y));
      let at = cols[0]?.start ?? raw.length;
      for (const c of cols) {
        expect(c.start, 'bodies follow one another').toBe(at);
        at = c.end;
        const out = valueArray(c.count);
        const r = new ByteReader(raw.subarray(c.start, c.end));
        decodeColumnBody(c.kind, r, out, 0, c.count);
        expect(r.pos, `body of path ${c.id} read to its end`).toBe(c.end - c.start);
        expect(out.map((v) => exactValue(v)), `path ${c.id} (seed ${SEED} round ${round})`).toEqual(want.get(c.id));
      }
      expect(at).toBe(raw.length);
    }
  });

  it('refuses a payload cut anywhere, with a byte more, or of layout 1, with TPD_CORRUPT_BLOCK', () => {
    const rand = rng(SEED + 1);
    const { raw } = block(rand, 30);
    for (let cut = 0; cut < raw.length; cut++) expect(refusal(raw.subarray(0, cut)), `cut at ${cut} of ${raw.length} (seed ${SEED})`).toBe('TPD_CORRUPT_BLOCK');
    const longer = new Uint8Array(raw.length + 1);
    longer.set(raw);
    expect(refusal(longer)).toBe('TPD_CORRUPT_BLOCK');
    // Layout 1: no layout mark (a batch count first).
    expect(refusal(Uint8Array.of(1, 1, 1, 0, 0, 0, 0x10, 0))).toBe('TPD_CORRUPT_BLOCK');
    // Flipped bytes: refused with the codec's error, or parsed into bodies that still tile the payload.
    for (let i = 0; i < 300; i++) {
      const bad = raw.slice();
      const at = Math.floor(rand() * bad.length);
      bad[at] = (bad[at] as number) ^ (1 << Math.floor(rand() * 8));
      const code = refusal(bad);
      if (code !== undefined) expect(code, `byte ${at} flipped (seed ${SEED})`).toBe('TPD_CORRUPT_BLOCK');
      else expect(columnBodies(bad).at(-1)?.end ?? bad.length).toBe(bad.length);
    }
  });
});
