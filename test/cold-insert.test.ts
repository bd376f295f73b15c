/**
 * The list hook may name a file older than the ones a cursor is reading (it fits a gap in
 * the seqs). Such an insert, landing while a cursor awaits a fetch, must not make the
 * cursor skip or repeat a file: cursors find files by seq, never by array index.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Archive, type FetchWait } from '../storage/archive.js';
import { ColdStorage, type ColdEvent } from '../storage/cold.js';
import type { Batch } from '../protocol/value.js';
import { naiveState, plain, readAll, sorted } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';

const FIX = resolve('test/fixtures/hooks');
const T0 = 1_700_000_000_000_000;
const storage = { flushIntervalMs: 0, imageFrequencyBytes: 4096 };
const PER_FILE = 100;

function batches(from: number, n: number): Batch[] {
  return Array.from({ length: n }, (_, i) => ({ ts: T0 + (from + i) * 1000, updates: [['/a', from + i], ['/b', (from + i) / 4]] }));
}

const running: Array<{ a: Archive; c: ColdStorage }> = [];
afterEach(async () => {
  for (const { a, c } of running.splice(0)) {
    await c.stop();
    await a.close();
  }
});

interface Gap {
  a: Archive;
  c: ColdStorage;
  /** Every batch in time order: four rotated files of PER_FILE batches, then `current`. */
  all: Batch[];
  /** Names of the rotated files, seq 0 to 3. */
  names: string[];
  /** Where the file of seq 1 waits until the test puts it in cold storage. */
  aside: string;
  cold: string;
  /** A FIFO: while it exists, the next get waits for a line on it. */
  gate: string;
}

/**
 * Four rotated files, all shipped and evicted; the catalog forgets seq 1 and cold storage
 * hides it, so the archive opens with files 0, 2, 3 (remote) and `current` (seq 4).
 */
async function archiveWithGap(): Promise<Gap> {
  const base = await tmpDir('tapedeck-cold-insert-');
  const dir = join(base, 'archive');
  const cold = join(base, 'cold');
  await mkdir(cold);
  const all = batches(0, 4 * PER_FILE + 50);
  const first = await Archive.open(dir, storage);
  const c1 = await ColdStorage.start(first, { hooks: { put: { cmd: join(FIX, 'put-copy.sh'), args: [cold] } }, retention: { maxAgeMs: 0, maxBytes: 1 }, checkIntervalMs: 0, listIntervalMs: 0 });
  const names: string[] = [];
  for (let f = 0; f <= 4; f++) {
    for (const b of all.slice(f * PER_FILE, (f + 1) * PER_FILE)) first.writer!.append(b.updates, b.ts);
    if (f === 4) break;
    const shipped = new Promise<ColdEvent>((done) => c1.on('event', (e: ColdEvent) => e.type === 'put' && done(e)));
    await first.writer!.rotate();
    const e = await shipped;
    expect(e).toMatchObject({ ok: true });
    names.push((e as { name: string }).name);
    c1.removeAllListeners('event');
  }
  await first.writer!.flush();
  await c1.check();
  expect(first.files.map((f) => f.location)).toEqual(['remote', 'remote', 'remote', 'remote', 'local']);
  await c1.stop();
  first.catalog.forgetFile(1);
  await first.close();
  const aside = join(base, names[1] as string);
  await rename(join(cold, names[1] as string), aside);

  const gate = join(base, 'gate');
  const a = await Archive.open(dir, storage);
  const c = await ColdStorage.start(a, {
    hooks: { get: { cmd: join(FIX, 'get-gated.sh'), args: [cold, gate] }, list: { cmd: join(FIX, 'list-dir.sh'), args: [cold] } },
    checkIntervalMs: 0, listIntervalMs: 0,
  });
  running.push({ a, c });
  expect(a.files.map((f) => f.seq)).toEqual([0, 2, 3, 4]);
  return { a, c, all, names, aside, cold, gate };
}

/**
 * Closes the gate (the next get waits) and returns a fetch listener: when the fetch of
 * `name` starts, the hidden file of seq 1 appears in cold storage and list adds it, then
 * the gate opens and the fetch ends.
 */
function insertDuringFetchOf(g: Gap, name: string): { onFetchWait: FetchWait; inserted: () => Promise<void> } {
  execFileSync('mkfifo', [g.gate]);
  let inserting: Promise<void> | undefined;
  const onFetchWait: FetchWait = (e) => {
    if (e.phase !== 'start' || e.name !== name || inserting) return;
    inserting = (async () => {
      try {
        await rename(g.aside, join(g.cold, g.names[1] as string));
        await g.c.refreshList();
        expect(g.a.files.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4]);
        expect(g.a.files[1]?.location).toBe('remote');
      } finally {
        // Whatever happened, the held fetch ends (a failure shows in inserted(), not as a hang).
        await writeFile(g.gate, 'go\n');
      }
    })();
    inserting.catch(() => undefined);
  };
  const inserted = async (): Promise<void> => {
    expect(inserting, `the fetch of ${name} never started`).toBeDefined();
    await inserting;
  };
  return { onFetchWait, inserted };
}

describe('a remote file older than a cursor joins the archive while the cursor reads', () => {
  it('stepping back across files: the cursor lands on the batch N back, taking no file twice and skipping none', async () => {
    const g = await archiveWithGap();
    const ins = insertDuringFetchOf(g, g.names[3] as string);
    const cur = g.a.cursor({ onFetchWait: ins.onFetchWait });
    await cur.seek('end');
    // Back through `current` and the file of seq 3 (fetched while list inserts seq 1) into seq 2.
    const n = 50 + PER_FILE + 30;
    await cur.seek({ batches: -n });
    await ins.inserted();
    const at = g.all.length - 1 - n;
    expect(cur.pos).toBe(g.all[at]!.ts);
    expect(plain(sorted(await cur.state()))).toStrictEqual(plain(sorted(naiveState(g.all, g.all[at]!.ts))));
    expect(plain(await readAll(cur))).toStrictEqual(g.all.slice(at + 1));
  });

  it('reading forward: every batch after the position once, in order', async () => {
    const g = await archiveWithGap();
    const from = 2 * PER_FILE + 50;
    // Fetched before the gate closes: only the fetch of seq 3 is held while list inserts seq 1.
    await g.a.cursor().seek({ ts: g.all[from]!.ts });
    const ins = insertDuringFetchOf(g, g.names[3] as string);
    const reader = g.a.cursor({ onFetchWait: ins.onFetchWait });
    await reader.seek({ ts: g.all[from]!.ts });
    expect(plain(await readAll(reader))).toStrictEqual(g.all.slice(from + 1));
    await ins.inserted();
  });
});
