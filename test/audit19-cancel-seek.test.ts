/**
 * A seek whose client leaves stops inside storage. Storage reads could not be cut mid-way:
 * a /state, /diff or /history whose time lies in a file shipped to cold storage waited for
 * the get hook to bring it back (up to HOOK_GET_DEFAULTS: 120 s a run, 3 runs), and a state
 * walked back block by block to the last image (with image_frequency 0, only at each file's
 * start: a 600 MB file is 1 to 3 s of walk) whoever still waited for it. The client's leaving
 * was seen only before and after (server/client-gone.ts): a /state or /diff held its place
 * in the answers' gate (jsonAnswersBuiltMax) until the hook ended, however long.
 *
 * Now the read's signal (storage/read-signal.ts, a cursor's onFetchWait made by readsUntil)
 * stops the walk between two blocks and the wait for a fetch (the fetch goes on, for the
 * next reader). Without the fix (the routes' cursors given no signal) the server tests fail:
 * the held fetch keeps the gate's one place and the next /state is not answered; the history
 * is never counted canceled; the storage test's walk reads every block.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canceledCount, hangUpLater } from './helpers/hang-up.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { Archive } from '../storage/index.js';
import { readsUntil } from '../storage/read-signal.js';
import { stateReads } from '../storage/cursor-state.js';
import { closeHeld, heldFiles, heldGets, serveHeld, type HeldServer } from './helpers/held-gets.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { jsonAnswersBuiltMax: limits.jsonAnswersBuiltMax, jsonAnswersWaitingMax: limits.jsonAnswersWaitingMax };
/** The hook holds its fetch for good: anything in this time is the signal's doing. */
const WITHIN_MS = 5_000;
const T0 = 1_765_000_000_000_000;
const iso = (us: number): string => new Date(us / 1000).toISOString();

let server: HeldServer | undefined;
afterEach(async () => {
  Object.assign(limits, saved);
  await closeHeld(server);
  server = undefined;
});

/**
 * A server whose answers' gate builds one answer at a time, over two rotated files shipped to
 * cold storage (their gets held by a FIFO until released) and a local `current`: `/v` is f
 * in file f, 2 in current.
 */
async function coldServer(): Promise<{ srv: HeldServer; base: string; names: string[] }> {
  limits.jsonAnswersBuiltMax = 1;
  limits.jsonAnswersWaitingMax = 1;
  const base = await tmpDir('audit19-seek-');
  const h = await heldGets(base);
  const files = await heldFiles(h, 2, (f) => {
    for (let b = 0; b < 10; b++) h.a.writer!.append([['/v', f], [`/f${f}/b${b}`, b]], T0 + f * 1_000_000_000 + b * 1_000_000);
  });
  h.a.writer!.append([['/v', 2]], T0 + 2_000_000_000);
  await h.a.writer!.flush();
  const srv = await serveHeld(h, files.release);
  return { srv, base, names: files.names };
}

/** Whether the get hook has started on `name` (test/fixtures/hooks/get-held.sh logs it). */
async function getStarted(base: string, name: string): Promise<boolean> {
  return (await readFile(join(base, 'calls.log'), 'utf8').catch(() => '')).includes(`start ${name}`);
}

describe('a read waiting for a file from cold storage, whose client leaves', () => {
  const inFile0 = iso(T0 + 5_000_000);
  for (const [route, path] of [
    ['/api/v1/state', `/api/v1/state?at=${inFile0}`],
    ['/api/v1/diff', `/api/v1/diff?start=${inFile0}&end=${iso(T0 + 2_000_000_000)}`],
  ]) {
    it(`${route}: stops waiting, gives the gate's place to the next, is counted canceled; the fetch goes on`, async () => {
      const { srv, base, names } = await coldServer();
      server = srv;
      const before = await canceledCount(srv.url);
      const gone = await hangUpLater(srv.url, path as string);
      await until(() => getStarted(base, names[0] as string), WITHIN_MS, 'the get hook to start');
      gone.destroy();
      await until(async () => (await canceledCount(srv.url)) > before, WITHIN_MS, 'the gone client counted canceled');
      // The gate's one place is free: a state of the local file is answered at once.
      const res = await fetch(`${srv.url}/api/v1/state?at=${iso(T0 + 2_000_000_000)}&glob=/v`, { signal: AbortSignal.timeout(WITHIN_MS) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { values: object }).values).toEqual({ '/v': 2 });
      // The fetch was left to finish: once the hook ends the file is local, and read.
      await srv.release();
      await until(() => srv.a.files.find((f) => f.name === names[0])?.location === 'local', WITHIN_MS, 'the fetch to finish');
      const again = await fetch(`${srv.url}/api/v1/state?at=${inFile0}&glob=/v`);
      expect(((await again.json()) as { values: object }).values).toEqual({ '/v': 0 });
    }, 60_000);
  }

  // A shard's routes, asked by a merging node: its seek into the cold file.
  for (const path of [`/api/v1/shard/before?ts=${T0 + 5_000_000}&n=2&glob=/v`, `/api/v1/shard/batches?from=${T0 + 5_000_000}&glob=/v`]) {
    it(`${path.split('?')[0] as string}: stops waiting and is counted canceled; answers once the file is back`, async () => {
      const { srv, base, names } = await coldServer();
      server = srv;
      const before = await canceledCount(srv.url);
      const gone = await hangUpLater(srv.url, path);
      await until(() => getStarted(base, names[0] as string), WITHIN_MS, 'the get hook to start');
      gone.destroy();
      await until(async () => (await canceledCount(srv.url)) > before, WITHIN_MS, 'the gone client counted canceled');
      await srv.release();
      await until(() => srv.a.files.find((f) => f.name === names[0])?.location === 'local', WITHIN_MS, 'the fetch to finish');
      const res = await fetch(srv.url + path);
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }, 60_000);
  }

  it('/api/v1/history: stops waiting and is counted canceled', async () => {
    const { srv, base, names } = await coldServer();
    server = srv;
    const before = await canceledCount(srv.url);
    const gone = await hangUpLater(srv.url, `/api/v1/history?from=${inFile0}&glob=/v`);
    await until(() => getStarted(base, names[0] as string), WITHIN_MS, 'the get hook to start');
    gone.destroy();
    await until(async () => (await canceledCount(srv.url)) > before, WITHIN_MS, 'the gone client counted canceled');
    await srv.release();
    const res = await fetch(`${srv.url}/api/v1/history?from=${inFile0}&glob=/v`);
    expect((await res.text()).split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { updates: object }).updates)).toEqual([
      ...Array.from({ length: 5 }, () => ({ '/v': 0 })),
      ...Array.from({ length: 10 }, () => ({ '/v': 1 })),
      { '/v': 2 },
    ]);
  }, 60_000);
});

describe('a state walking back far to its image', () => {
  it('stops between two blocks once its signal aborts, with the signal\'s reason', async () => {
    // image_frequency 0: the only image opens the file; /sparse, set once after it, makes
    // the state of every path walk back to it across every block.
    const a = await Archive.open(await tmpDir('audit19-walk-'), { flushIntervalMs: 0, imageFrequencyBytes: 0 });
    try {
      a.writer!.append([['/sparse', 'once']], T0);
      for (let b = 1; b <= 2000; b++) {
        const updates: Array<[string, number]> = [];
        for (let i = 0; i < 500; i++) updates.push([`/n/${i}`, b * 1000 + i]);
        a.writer!.append(updates, T0 + b * 1_000_000);
      }
      await a.writer!.flush();
      const end = { ts: T0 + 2000 * 1_000_000 };
      const whole = a.cursor();
      await whole.seek(end);
      const r0 = stateReads.columns + stateReads.full;
      expect((await whole.state()).get('/sparse')).toBe('once');
      const blocks = stateReads.columns + stateReads.full - r0;
      expect(blocks).toBeGreaterThan(20);

      const ac = new AbortController();
      const why = new Error('the asker left');
      const c = a.cursor({ onFetchWait: readsUntil(undefined, ac.signal) });
      await c.seek(end);
      const r1 = stateReads.columns + stateReads.full;
      // Aborted once the walk has read 3 blocks (it awaits each read: this runs between two).
      const watch = setInterval(() => stateReads.columns + stateReads.full - r1 >= 3 && ac.abort(why), 0);
      try {
        await expect(c.state()).rejects.toBe(why);
      } finally {
        clearInterval(watch);
      }
      expect(stateReads.columns + stateReads.full - r1).toBeLessThan(blocks / 2);
      // An aborted signal stops a read before its first block.
      const r2 = stateReads.columns + stateReads.full;
      await expect(c.state()).rejects.toBe(why);
      expect(stateReads.columns + stateReads.full).toBe(r2);
    } finally {
      await a.close();
    }
  }, 60_000);
});
