/** BlockTable: a file's blocks as typed-array columns, read back exactly. */
import { describe, expect, it } from 'vitest';
import { BlockTable } from '../storage/file-list.js';
import { BlockType } from '../storage/codec/frame.js';
import type { BlockRow } from '../storage/catalog.js';
import { rng } from './helpers/workload.js';

function randomRows(seed: number, n: number): BlockRow[] {
  const r = rng(seed);
  const types = [BlockType.PATHS, BlockType.DELTA, BlockType.DELTA, BlockType.IMAGE];
  const rows: BlockRow[] = [];
  let offset = 4096;
  let ts = 2 ** 52 - 10_000_000; // near the top of exact integers: must stay exact
  for (let i = 0; i < n; i++) {
    const frameBytes = 48 + Math.floor(r() * 64 * 1024 * 1024);
    const first = ts + Math.floor(r() * 100);
    const last = first + Math.floor(r() * 1000);
    rows.push({ offset, frameBytes, type: types[Math.floor(r() * types.length)]!, firstTs: first, lastTs: last, batches: Math.floor(r() * 2 ** 32), updates: Math.floor(r() * 2 ** 32) });
    offset += frameBytes; // past 4 GiB after a few hundred blocks
    ts = last;
  }
  return rows;
}

describe('BlockTable', () => {
  it('reads back every field of every row, growing from a capacity of one, with offsets past 4 GiB', () => {
    const rows = randomRows(3, 2000);
    const t = new BlockTable(1);
    rows.slice(0, 700).forEach((row) => t.push(row));
    // The compatibility view built midway stays in step with later pushes.
    expect(t.rows).toStrictEqual(rows.slice(0, 700));
    rows.slice(700).forEach((row) => t.push(row));
    expect(t.length).toBe(rows.length);
    expect(rows[rows.length - 1]!.offset).toBeGreaterThan(2 ** 32);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      expect(t.row(i)).toStrictEqual(row);
      expect([t.offset(i), t.frameBytes(i), t.type(i), t.firstTs(i), t.lastTs(i), t.batches(i), t.updates(i)]).toStrictEqual([
        row.offset, row.frameBytes, row.type, row.firstTs, row.lastTs, row.batches, row.updates,
      ]);
    }
    expect(t.rows).toStrictEqual(rows);
    const deltas = rows.flatMap((row, i) => (row.type === BlockType.DELTA ? [i] : []));
    expect(t.deltas).toStrictEqual(deltas);
    deltas.forEach((i, di) => expect(t.delta(di)).toStrictEqual(rows[i]));
  });
});
