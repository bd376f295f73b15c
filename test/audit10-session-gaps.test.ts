/**
 * Playback crosses archive files that cannot be read. Reading forward into a file that is
 * gone (deleted while the server runs, or found missing at the open) failed with
 * TPD_FILE_UNAVAILABLE (or TPD_IO) and paused the session there, while a seek past it
 * worked. Now the client gets a `gap` frame (protocol/frames.ts) naming the files and the
 * time range lost, then the state after the gap (whole: the next file's opening image), then
 * every batch after it, exactly, whatever the speed (paced, unlimited: the column cursor),
 * the framing (coalesced or not) and the wire format.
 *
 * Files are removed at seeded random instants while sessions play (GAPS_SEED replays).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Archive } from '../storage/archive.js';
import { ColdStorage } from '../storage/cold.js';
import { buildServer } from '../server/app.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { api, TestWs, type Frame } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const T0 = 1_700_000_000_000_000;
const FILES = 6; // rotated, then `current`
const PER_FILE = 40;
const STEP_US = 10_000;
const PATHS = 8;
const FRAME_MS = 15_000;

function rng(seed: number): () => number {
  let r = seed >>> 0 || 1;
  return () => ((r = (Math.imul(r, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
}

interface Rig {
  a: Archive;
  app: FastifyInstance;
  url: string;
  dir: string;
  /** Every batch written, in order, and which file (index; FILES = current) holds it. */
  batches: Batch[];
  fileOf: number[];
}

const open: Array<{ app: FastifyInstance; a: Archive; c?: ColdStorage }> = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    await r.app.close();
    await r.c?.stop();
    await r.a.close();
  }
});

async function write(dir: string, rand: () => number): Promise<{ batches: Batch[]; fileOf: number[] }> {
  const a = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
  const batches: Batch[] = [];
  const fileOf: number[] = [];
  for (let f = 0; f <= FILES; f++) {
    for (let i = 0; i < PER_FILE; i++) {
      const n = 1 + Math.floor(rand() * 3);
      const updates: Update[] = [];
      const used = new Set<number>();
      for (let u = 0; u < n; u++) {
        const p = Math.floor(rand() * PATHS);
        if (used.has(p)) continue;
        used.add(p);
        updates.push([`/p/${p}`, rand() < 0.2 ? `s${Math.floor(rand() * 1000)}` : Math.floor(rand() * 1e6)]);
      }
      const b = { ts: T0 + (f * PER_FILE + i) * STEP_US, updates };
      a.writer!.append(b.updates, b.ts);
      batches.push(b);
      fileOf.push(f);
    }
    if (f < FILES) await a.writer!.rotate();
  }
  await a.writer!.flush();
  await a.close();
  return { batches, fileOf };
}

async function serve(dir: string, written: { batches: Batch[]; fileOf: number[] }, readonly: boolean): Promise<Rig> {
  const a = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0, ...(readonly ? { readonly: true } : {}) });
  const app = await buildServer({ archive: a, playback: { sessionGraceMs: 60_000 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  open.push({ app, a });
  return { a, app, dir, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, ...written };
}

function rotatedNames(a: Archive): string[] {
  return a.files.filter((f) => f.sealed).map((f) => f.name);
}

/** The state at `ts`: every path's last value at or before it. */
function stateAt(batches: Batch[], ts: number): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (let p = 0; p < PATHS; p++) out[`/p/${p}`] = null;
  for (const b of batches) {
    if (b.ts > ts) break;
    for (const [p, v] of b.updates) out[p] = v;
  }
  return out;
}

async function play(r: Rig, controls: object, format: 'json' | 'msgpack', coalesce: boolean): Promise<{ ws: TestWs; done: Promise<Frame[]> }> {
  const created = await api(r.url, 'POST', '/api/v1/sessions', { pos: 'beginning', end: r.batches.at(-1)?.ts, ...controls });
  expect([created.status, created.body.error]).toEqual([201, undefined]);
  // TestWs decodes by the frame's kind (binary: msgpack); the query is written here whole.
  const query = [...(format === 'msgpack' ? ['format=msgpack'] : []), ...(coalesce ? ['coalesce=true'] : [])];
  const ws = await TestWs.open(`${r.url}/api/v1/sessions/${created.body.id as string}/stream${query.length > 0 ? `?${query.join('&')}` : ''}`);
  const done = ws.next((f) => f.type === 'end' || f.type === 'error', FRAME_MS).then((last) => [...ws.frames, last]);
  return { ws, done };
}

/**
 * What a session received against what was written: every batch, exactly and in order,
 * except those a gap frame says were lost, each of which is in a file that is gone; after
 * each gap, the state at its end before any batch.
 */
function check(r: Rig, frames: Frame[], gone: ReadonlySet<number>, label: string): number {
  const got: Batch[] = [];
  let gaps = 0;
  let expectState: number | undefined;
  const lost = new Set<number>();
  for (const f of frames) {
    if (f.type === 'gap') {
      gaps++;
      const from = f.fromUs as number | null;
      const to = f.toUs as number;
      r.batches.forEach((b, i) => {
        if ((from === null || b.ts > from) && b.ts <= to) lost.add(i);
      });
      for (const name of f.files as string[]) expect(rotatedNames(r.a), label).toContain(name);
      expectState = to;
    } else if (f.type === 'state' && expectState !== undefined) {
      expect([label, f.ts, f.values]).toEqual([label, expectState, stateAt(r.batches, expectState)]);
      expectState = undefined;
    } else if (f.type === 'batch' || f.type === 'batches') {
      expect(expectState, `${label}: a batch before the state after a gap`).toBeUndefined();
      if (f.type === 'batch') got.push({ ts: f.ts as number, updates: f.updates as Update[] });
      else got.push(...(f.batches as Batch[]));
    } else if (f.type === 'error') {
      throw new Error(`${label}: error frame ${JSON.stringify(f)}`);
    }
  }
  for (const i of lost) expect([label, i, gone.has(r.fileOf[i] as number)]).toEqual([label, i, true]);
  expect(got.map((b) => [b.ts, b.updates]), label).toEqual(r.batches.filter((_, i) => !lost.has(i)).map((b) => [b.ts, b.updates]));
  return gaps;
}

describe('a session reading forward into a file that is gone', () => {
  it('crosses files deleted at random instants while it plays: told of each gap, the state after it, every batch after it', async () => {
    const seed = scheduleSeed('GAPS_SEED', 'files deleted while sessions play');
    const rand = rng(seed);
    const dir = await tmpDir('tapedeck-audit10-gaps-');
    const r = await serve(dir, await write(dir, rand), false);
    const names = rotatedNames(r.a);
    // Files 1..FILES-2: the newest sealed file and `current` are opened by the server's warm-up.
    const candidates = names.slice(1, FILES - 1);
    const chosen = candidates.filter(() => rand() < 0.6);
    if (chosen.length === 0) chosen.push(candidates[Math.floor(rand() * candidates.length)] as string);
    const gone = new Set(chosen.map((n) => names.indexOf(n)));
    // Paced sessions take about 0.6 s a file at speed 0.66; each file goes at a random
    // instant before the first of them can have reached it.
    const sessions = [
      await play(r, { speed: 0.66 }, 'json', false),
      await play(r, { speed: 0.66 }, 'msgpack', true),
      await play(r, { speed: 1 }, 'json', true),
    ];
    const deletions = chosen.map(async (n) => {
      const i = names.indexOf(n);
      await new Promise((done) => setTimeout(done, rand() * Math.max(0, i * 0.4 * 1000 - 150)));
      await unlink(join(dir, n));
    });
    await Promise.all(deletions);
    // Unlimited play, once every file chosen is gone: the column cursor crosses them.
    sessions.push(await play(r, { speed: 'unlimited' }, 'msgpack', true), await play(r, { speed: 'unlimited' }, 'json', false));
    let gaps = 0;
    for (const [k, s] of sessions.entries()) gaps += check(r, await s.done, gone, `session ${k} (seed ${seed}, gone ${[...gone].join(',')})`);
    expect(gaps).toBeGreaterThan(0);
  });

  it('crosses files found missing at the open, at unlimited speed and paced, and steps over them', async () => {
    const seed = scheduleSeed('GAPS_SEED', 'files missing at the open');
    const rand = rng(seed);
    const dir = await tmpDir('tapedeck-audit10-gaps-missing-');
    const written = await write(dir, rand);
    const probe = await Archive.open(dir, { readonly: true });
    const names = rotatedNames(probe);
    await probe.close();
    // The first file and two neighbours in the middle: gaps from the beginning and of several files.
    const gone = new Set([0, 2, 3]);
    for (const i of gone) await unlink(join(dir, names[i] as string));
    const r = await serve(dir, written, true);
    const sessions = [await play(r, { speed: 'unlimited' }, 'json', true), await play(r, { speed: 'unlimited' }, 'msgpack', false), await play(r, { speed: 50 }, 'json', true)];
    const gaps = [];
    for (const [k, s] of sessions.entries()) gaps.push(check(r, await s.done, gone, `session ${k}`));
    // Two holes: file 0 (from the beginning), files 2 and 3 (one gap naming both).
    expect(gaps).toEqual([2, 2, 2]);
    // A bounded end inside the hole: the gap, then the end, no state after the end.
    const endInHole = r.batches[2 * PER_FILE + 7]?.ts as number;
    const bounded = await play(r, { speed: 'unlimited', end: endInHole }, 'json', true);
    const tail = await bounded.done;
    const lastGap = tail.map((f) => f.type).lastIndexOf('gap');
    const afterGap = tail.slice(lastGap);
    expect(afterGap.map((f) => f.type).filter((t) => t !== 'controls')).toEqual(['gap', 'end']);
    // A step forward over the hole lands where counting the readable batches says.
    const created = await api(r.url, 'POST', '/api/v1/sessions', { pos: r.batches[PER_FILE + 5]?.ts, state: 'pause' });
    const ws = await TestWs.open(`${r.url}/api/v1/sessions/${created.body.id as string}/stream`);
    await ws.next((f) => f.type === 'state');
    ws.send({ type: 'control', set: { pos: `+${PER_FILE}` } });
    const readable = r.batches.filter((_, i) => !gone.has(r.fileOf[i] as number));
    const from = readable.findIndex((b) => b.ts === r.batches[PER_FILE + 5]?.ts);
    const landed = (await ws.next((f) => f.type === 'state')).ts as number;
    expect(landed).toBe(readable[from + PER_FILE]?.ts);
  });

  it('crosses files cold storage cannot give back, and fetches those it can, as a seek does', async () => {
    const seed = scheduleSeed('GAPS_SEED', 'files not fetchable');
    const rand = rng(seed);
    const base = await tmpDir('tapedeck-audit10-gaps-cold-');
    const dir = join(base, 'archive');
    const cold = join(base, 'cold');
    await mkdir(cold);
    const written = await write(dir, rand);
    const a = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
    const fix = resolve('test/fixtures/hooks');
    const c = await ColdStorage.start(a, {
      hooks: { put: { cmd: join(fix, 'put-copy.sh'), args: [cold] }, get: { cmd: join(fix, 'get-copy.sh'), args: [cold] } },
      policy: { get: { attempts: 1 } },
      retention: { maxAgeMs: 0, maxBytes: 1 },
      checkIntervalMs: 0,
      listIntervalMs: 0,
      fetchedKeepMs: 0,
    });
    const names = rotatedNames(a);
    // Every rotated file is shipped at the start (queued unshipped), then evicted.
    await until(async () => {
      await c.check();
      return a.files.filter((f) => f.location === 'remote').length === names.length;
    }, FRAME_MS, 'every rotated file shipped and evicted');
    expect(a.files.filter((f) => f.location === 'remote').map((f) => f.name)).toEqual(names);
    // Cold storage lost some of them: their gets fail.
    const gone = new Set([1, 2, 4].filter(() => rand() < 0.8));
    if (gone.size === 0) gone.add(3);
    for (const i of gone) await unlink(join(cold, names[i] as string));
    const app = await buildServer({ archive: a, cold: c, playback: { sessionGraceMs: 60_000 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    open.push({ app, a, c });
    const r: Rig = { a, app, dir, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, ...written };
    const sessions = [await play(r, { speed: 'unlimited' }, 'json', true), await play(r, { speed: 50 }, 'msgpack', false)];
    for (const [k, s] of sessions.entries()) {
      const frames = await s.done;
      expect(check(r, frames, gone, `session ${k} (seed ${seed})`)).toBeGreaterThan(0);
      // The files it could fetch were fetched (told as buffering), the others named in gaps.
      const buffered = frames.filter((f) => f.type === 'info' && f.code === 'TPD_BUFFERED').length;
      expect(buffered).toBeGreaterThan(0);
    }
  });
});
