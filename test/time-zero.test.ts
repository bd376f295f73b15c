/**
 * A batch at 0 µs (1970-01-01T00:00:00Z, the time contract's first instant) is recorded at
 * 0, not moved: the writer took an empty archive's lastTs of 0 for a batch at 0 and stamped
 * the first batch 1, so every time of the archive read back one late (found by the web
 * player's time audit). Later batches at or before the last are still moved after it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { plain, readAll, sorted } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';

const open: Archive[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

async function archive(dir: string): Promise<Archive> {
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  open.push(a);
  return a;
}

describe('a batch at 0 µs', () => {
  it('is recorded at 0 in an empty archive, read back, sought and stated at 0, across a reopen', async () => {
    const dir = await tmpDir();
    const a = await archive(dir);
    a.writer!.append([['/x', 'at zero'], ['/y', 0]], 0);
    a.writer!.append([['/x', 'at one']], 1);
    a.writer!.append([['/y', 2]], 2);
    await a.writer!.flush();
    const want = [{ ts: 0, updates: [['/x', 'at zero'], ['/y', 0]] }, { ts: 1, updates: [['/x', 'at one']] }, { ts: 2, updates: [['/y', 2]] }];
    expect(plain(await readAll(a.cursor()))).toStrictEqual(want);
    const c = a.cursor();
    await c.seek({ ts: 0 });
    expect(sorted(await c.state())).toStrictEqual([['/x', 'at zero'], ['/y', 0]]);
    expect((await c.next())?.ts).toBe(1);
    await a.close();
    open.splice(0);
    const b = await archive(dir);
    expect(plain(await readAll(b.cursor()))).toStrictEqual(want);
    // A later batch at 0 is before the last: moved after it, as any late batch is.
    b.writer!.append([['/x', 'late']], 0);
    await b.writer!.flush();
    expect((await readAll(b.cursor())).map((x) => x.ts)).toEqual([0, 1, 2, 3]);
  });

  it('when it is the only batch, a reopened archive moves the next batch at 0 to 1 (no two batches at one time)', async () => {
    const dir = await tmpDir();
    const a = await archive(dir);
    a.writer!.append([['/x', 1]], 0);
    await a.writer!.flush();
    await a.close();
    open.splice(0);
    const b = await archive(dir);
    b.writer!.append([['/x', 2]], 0);
    await b.writer!.flush();
    expect(plain(await readAll(b.cursor()))).toStrictEqual([{ ts: 0, updates: [['/x', 1]] }, { ts: 1, updates: [['/x', 2]] }]);
  });
});
