/**
 * A session reading forward into gone files with nothing readable after them: the archive's
 * last files deleted (a read-only archive), or the newest rotated file gone while `current`
 * has nothing committed yet. Before, the read failed (an error frame, the session paused
 * there) though nothing was wrong but the hole. Now the client gets a `gap` frame naming the
 * files (from the last batch sent), then the session behaves as at the end of the archive: an
 * unbounded end tails (and crosses the hole, state first, once data comes after it), a
 * bounded end ends, a burst ends there; a step forward runs into it as into the end.
 *
 * Which files go is seeded (GAP_END_SEED replays).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Archive } from '../storage/archive.js';
import { buildServer } from '../server/app.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { api, TestWs, type Frame } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const T0 = 1_700_000_000_000_000;
const FILES = 5; // rotated, then `current`
const PER_FILE = 30;
const STEP_US = 10_000;
const PATHS = 6;
const FRAME_MS = 10_000;

function rng(seed: number): () => number {
  let r = seed >>> 0 || 1;
  return () => ((r = (Math.imul(r, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
}

const open: Array<{ app: FastifyInstance; a: Archive }> = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    await r.app.close();
    await r.a.close();
  }
});

function batchAt(n: number, rand: () => number): Batch {
  const updates: Update[] = [];
  const used = new Set<number>();
  for (let u = 0; u < 1 + Math.floor(rand() * 3); u++) {
    const p = Math.floor(rand() * PATHS);
    if (used.has(p)) continue;
    used.add(p);
    updates.push([`/p/${p}`, rand() < 0.2 ? `s${Math.floor(rand() * 1000)}` : Math.floor(rand() * 1e6)]);
  }
  return { ts: T0 + n * STEP_US, updates };
}

/** FILES rotated files of PER_FILE batches; `current` holds PER_FILE more, or nothing (`emptyCurrent`). */
async function write(dir: string, rand: () => number, emptyCurrent: boolean): Promise<{ batches: Batch[]; names: string[] }> {
  const a = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
  const batches: Batch[] = [];
  for (let f = 0; f <= FILES; f++) {
    if (f === FILES && emptyCurrent) break;
    for (let i = 0; i < PER_FILE; i++) {
      const b = batchAt(batches.length, rand);
      a.writer!.append(b.updates, b.ts);
      batches.push(b);
    }
    if (f < FILES) await a.writer!.rotate();
  }
  await a.writer!.flush();
  const names = a.files.filter((f) => f.sealed).map((f) => f.name);
  await a.close();
  return { batches, names };
}

async function serve(dir: string, readonly: boolean): Promise<{ a: Archive; url: string }> {
  const a = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0, ...(readonly ? { readonly: true } : {}) });
  const app = await buildServer({ archive: a, playback: { sessionGraceMs: 60_000 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  open.push({ app, a });
  return { a, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` };
}

async function stream(url: string, controls: object, query = ''): Promise<{ id: string; ws: TestWs }> {
  const created = await api(url, 'POST', '/api/v1/sessions', controls);
  expect([created.status, created.body.error]).toEqual([201, undefined]);
  const id = created.body.id as string;
  return { id, ws: await TestWs.open(`${url}/api/v1/sessions/${id}/stream${query}`) };
}

function batchesOf(frames: Frame[]): Batch[] {
  const out: Batch[] = [];
  for (const f of frames) {
    if (f.type === 'batch') out.push({ ts: f.ts as number, updates: f.updates as Update[] });
    else if (f.type === 'batches') out.push(...(f.batches as Batch[]));
  }
  return out;
}

function stateAt(batches: Batch[], ts: number): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (let p = 0; p < PATHS; p++) out[`/p/${p}`] = null;
  for (const b of batches) {
    if (b.ts > ts) break;
    for (const [p, v] of b.updates) out[p] = v;
  }
  return out;
}

const types = (frames: Frame[]): string[] => frames.filter((f) => f.type !== 'batch' && f.type !== 'batches' && f.type !== 'coverage').map((f) => f.type);

describe('a session reading into gone files with nothing readable after them', () => {
  it('read-only archive whose last files are gone: every batch before them, a gap, then tail (unbounded) or end (bounded), in every way of playing', async () => {
    const seed = scheduleSeed('GAP_END_SEED', 'trailing files gone');
    const rand = rng(seed);
    const dir = await tmpDir('tapedeck-audit11-gap-end-');
    const { batches, names } = await write(dir, rand, false);
    // The last k files go (current among them), k from 1 to 3; the session starts in a file before them.
    const k = 1 + Math.floor(rand() * 3);
    const all = [...names, 'current'];
    const goneNames = all.slice(all.length - k);
    for (const n of goneNames) await unlink(join(dir, n));
    const kept = batches.slice(0, (FILES + 1 - k) * PER_FILE);
    const startAt = (kept[Math.floor(rand() * (kept.length - PER_FILE))] as Batch).ts;
    const { url } = await serve(dir, true);
    const lastKept = (kept.at(-1) as Batch).ts;
    const ways: Array<[string, object, string]> = [
      ['unlimited', { speed: 'unlimited' }, ''],
      ['unlimited, coalesced, msgpack', { speed: 'unlimited' }, '?coalesce=true&format=msgpack'],
      ['paced', { speed: 50 }, ''],
      ['a burst past it', { state: 'pause' }, ''],
    ];
    for (const bounded of [false, true]) {
      for (const [way, controls, query] of ways) {
        const label = `${way}, ${bounded ? 'bounded end' : 'unbounded end'}, seed ${seed}`;
        const end = bounded ? { end: (batches.at(-1) as Batch).ts } : {};
        const { ws } = await stream(url, { pos: startAt, ...controls, ...end }, query);
        const isBurst = way.includes('burst');
        const frames = ws.frames;
        const controlsFrames = (): Frame[] => frames.filter((f) => f.type === 'controls');
        if (isBurst) {
          await until(() => controlsFrames().length > 0, FRAME_MS, `${label}: the first controls frame`);
          ws.ws.send(JSON.stringify({ type: 'control', set: { burst: 1000 } }));
        }
        // Settled: an error, the end, tail, or the burst's end (the controls frame after its clamp notice).
        const settled = (): boolean => frames.some((f) => f.type === 'end' || f.type === 'error' || (f.type === 'controls' && (f.controls as { state: string }).state === 'tail')) || (isBurst && frames.findIndex((f) => f.type === 'info') >= 0 && frames.slice(frames.findIndex((f) => f.type === 'info')).some((f) => f.type === 'controls'));
        await until(settled, FRAME_MS, `${label}: settled`);
        const last = frames.at(-1) as Frame;
        expect([label, frames.filter((f) => f.type === 'error')]).toEqual([label, []]);
        const gap = frames.find((f) => f.type === 'gap');
        expect([label, gap?.fromUs, gap?.files]).toEqual([label, lastKept, goneNames]);
        expect([label, batchesOf(frames).map((b) => [b.ts, b.updates])]).toEqual([label, kept.filter((b) => b.ts > startAt).map((b) => [b.ts, b.updates])]);
        const after = types(frames.slice(frames.indexOf(gap as Frame) + 1));
        if (isBurst) expect([label, after]).toEqual([label, ['info', 'controls']]); // TPD_CLAMPED, then the burst's end
        else if (bounded) expect([label, after]).toEqual([label, ['end', 'controls']]);
        else expect([label, after, (last.controls as { state: string }).state]).toEqual([label, ['controls'], 'tail']);
        ws.ws.terminate();
      }
    }
    // A step forward runs into the hole as into the end: clamped, the state at the last batch before it.
    const { ws } = await stream(url, { pos: startAt, state: 'pause' });
    await ws.next((f) => f.type === 'controls');
    ws.ws.send(JSON.stringify({ type: 'control', set: { pos: `+${kept.length + 5}` } }));
    const clamped = await ws.next((f) => f.type === 'info' || f.type === 'error', FRAME_MS);
    expect([clamped.type, clamped.code]).toEqual(['info', 'TPD_CLAMPED']);
    const state = await ws.next((f) => f.type === 'state' && f.ts !== startAt, FRAME_MS);
    expect([state.ts, state.values]).toEqual([lastKept, stateAt(kept, lastKept)]);
    ws.ws.terminate();
  });
});
