/**
 * The column append (writer.pathId + writer.appendColumns): the same archive as `append`
 * of the same batches, ids resolved once, numbers unboxed and bit-exact, and nothing
 * recorded when a batch is refused.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch, Value } from '../protocol/value.js';
import { randomBatches, rng } from './helpers/workload.js';
import { tmpDir } from './helpers/tmp.js';
import { plain, readAll } from './helpers/replay.js';
import type { ArchiveWriter } from '../storage/writer.js';

const small = { imageFrequencyBytes: 4096, flushIntervalMs: 0 };

/** Appends a batch as columns: a Float64Array when every value is a number, else an array. */
function appendAsColumns(w: ArchiveWriter, b: Batch): number {
  const ids = new Uint32Array(b.updates.length);
  b.updates.forEach(([p], i) => (ids[i] = w.pathId(p)));
  const values = b.updates.map(([, v]) => v);
  const allNum = values.every((v) => typeof v === 'number');
  return w.appendColumns(ids, allNum ? Float64Array.from(values as number[]) : values, b.ts);
}

function bitsOf(v: Value): string {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, v as number, true);
  return dv.getBigUint64(0, true).toString(16);
}

async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    return isTapedeckError(err) ? err.code : `not a TapedeckError: ${String(err)}`;
  }
  return 'no error';
}

describe('appendColumns', () => {
  it('reads back random workloads exactly as append writes them, mixed with append on the same paths', async () => {
    const batches = randomBatches(23, 3000, { paths: 300, maxUpdates: 60 });
    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    const w = a.writer!;
    const pick = rng(5);
    for (const [i, b] of batches.entries()) {
      // A third through append: paths it defines first are met later through handles taken before.
      if (pick() < 0.33) w.append(b.updates, b.ts);
      else appendAsColumns(w, b);
      if (i % 400 === 399) await w.flush();
    }
    await w.flush();
    expect(plain(await readAll(a.cursor()))).toStrictEqual(batches);
    expect(new Set(a.paths).size).toBe(a.paths.length);
    await a.close();
    const b = await Archive.open(dir, { readonly: true });
    expect(plain(await readAll(b.cursor()))).toStrictEqual(batches);
    await b.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('writes the same bytes as append for the same batches', async () => {
    const batches = randomBatches(31, 1500, { paths: 120, maxUpdates: 30 });
    const sizes: number[] = [];
    for (const columns of [false, true]) {
      const dir = await tmpDir();
      const a = await Archive.open(dir, small);
      for (const b of batches) if (columns) appendAsColumns(a.writer!, b); else a.writer!.append(b.updates, b.ts);
      await a.writer!.flush();
      sizes.push(a.totals().bytes);
      await a.close();
    }
    expect(sizes[1]).toBe(sizes[0]);
  });

  it('a block that turns from numbers to other values mid-block reads back exactly', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    const w = a.writer!;
    const ids = new Uint32Array([w.pathId('/a'), w.pathId('/b')]);
    const batches: Batch[] = [];
    let ts = 1_000_000;
    for (let i = 0; i < 50; i++) {
      const nums = new Float64Array([i + 0.5, -i]);
      w.appendColumns(ids, nums, ++ts);
      batches.push({ ts, updates: [['/a', i + 0.5], ['/b', -i]] });
      nums.fill(99); // the caller reuses its arrays: what was recorded must not change
    }
    const mixed: Value[] = ['text', { k: [1, null] }];
    w.appendColumns(ids, mixed, ++ts);
    batches.push({ ts, updates: [['/a', 'text'], ['/b', { k: [1, null] }]] });
    for (let i = 0; i < 20; i++) {
      w.appendColumns(ids, new Float64Array([i, i * 2.25]), ++ts);
      batches.push({ ts, updates: [['/a', i], ['/b', i * 2.25]] });
    }
    await w.flush();
    expect(plain(await readAll(a.cursor()))).toStrictEqual(batches);
    await a.close();
  });

  it("keeps a signalling NaN's bits from a Float64Array, in deltas and in images", async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, small);
    const w = a.writer!;
    const stale = new Float64Array(1);
    new DataView(stale.buffer).setBigUint64(0, 0x7ff0000000000002n, true);
    const ids = new Uint32Array([w.pathId('/stale'), w.pathId('/n')]);
    let ts = 5_000_000;
    const values = new Float64Array(2);
    for (let i = 0; i < 2000; i++) {
      values[0] = i % 3 === 0 ? (stale[0] as number) : i;
      values[1] = i / 7;
      w.appendColumns(ids, values, ++ts);
    }
    await w.flush();
    await a.close();
    const b = await Archive.open(dir, { readonly: true });
    let staleSeen = 0;
    for (const batch of await readAll(b.cursor())) {
      const v = batch.updates.find(([p]) => p === '/stale')![1];
      if (v !== v) {
        expect(bitsOf(v)).toBe('7ff0000000000002');
        staleSeen++;
      }
    }
    expect(staleSeen).toBe(667);
    // The state at the end comes from images written from the builder's unboxed state.
    expect(b.files.length).toBeGreaterThan(0);
    const c = b.cursor();
    await c.seek({ ts: 5_000_000 + 1999 });
    const st = await c.state();
    expect(bitsOf(st.get('/stale') as Value)).toBe('7ff0000000000002');
    await b.close();
  });

  it('refuses bad ids, bad lengths, bad arrays, bad values and oversize batches, recording nothing', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    const w = a.writer!;
    const x = w.pathId('/x');
    const never = w.pathId('/never/appended');
    expect(w.pathId('/x')).toBe(x);
    expect(await codeOf(() => w.pathId('no-slash'))).toBe('TPD_BAD_PATH');
    expect(await codeOf(() => w.pathId(42 as unknown as string))).toBe('TPD_BAD_PATH');
    expect(await codeOf(() => w.appendColumns(new Uint32Array([x, 12345]), new Float64Array(2), 10))).toBe('TPD_BAD_ARGUMENT');
    expect(await codeOf(() => w.appendColumns(new Uint32Array([x]), new Float64Array(2), 10))).toBe('TPD_BAD_ARGUMENT');
    expect(await codeOf(() => w.appendColumns([x] as unknown as Uint32Array, new Float64Array(1), 10))).toBe('TPD_BAD_ARGUMENT');
    expect(await codeOf(() => w.appendColumns(new Uint32Array([x]), new Float32Array(1) as unknown as Float64Array, 10))).toBe('TPD_BAD_ARGUMENT');
    expect(await codeOf(() => w.appendColumns(new Uint32Array([x, never]), [1, (() => 1) as unknown as Value], 10))).toBe('TPD_BAD_ARGUMENT');
    expect(await codeOf(() => w.appendColumns(new Uint32Array([x]), new Float64Array(1), -1))).toBe('TPD_BAD_ARGUMENT');
    const big = STORAGE_LIMITS.batchUpdatesMax + 1;
    expect(await codeOf(() => w.appendColumns(new Uint32Array(big).fill(x), new Float64Array(big), 10))).toBe('TPD_BATCH_TOO_LARGE');
    const huge = 'x'.repeat(STORAGE_LIMITS.batchBytesMax);
    expect(await codeOf(() => w.appendColumns(new Uint32Array([never]), [huge], 10))).toBe('TPD_BATCH_TOO_LARGE');
    expect(w.stats.batches).toBe(0);
    expect(a.paths).toStrictEqual([]);
    // A path named by a handle but never appended is not in the archive, and the state at
    // the end does not wait for it.
    w.appendColumns(new Uint32Array([x]), new Float64Array([1.5]), 20);
    await w.flush();
    expect(a.paths).toStrictEqual(['/x']);
    const c = a.cursor();
    await c.seek('end');
    expect(plain([...(await c.state())])).toStrictEqual([['/x', 1.5]]);
    await a.close();
    expect(await codeOf(() => w.appendColumns(new Uint32Array([x]), new Float64Array(1), 30))).toBe('TPD_ARCHIVE_CLOSED');
  });
});
