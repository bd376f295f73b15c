/**
 * Reading forward across a hole no file entry names. With no catalog (removed, then read
 * read-only: inspect, export, a read-only server; or rebuilt by `tapedeck reindex`), a middle
 * segment file deleted (or the first one), or one truncated, is named by nothing: seeks refuse
 * a state in it (99a505f), but every forward read (a cursor playing, export, /history, the
 * per-series read of PromQL, steps) went from the file before it to the file after it as if
 * nothing had been recorded in between. Now each reports it as it reports a catalog-named
 * gone file or a damaged block (and /diff, whose pass crosses files itself): TPD_FILE_UNAVAILABLE (seqs with no file) or TPD_CORRUPT_BLOCK
 * (a damaged file's lost end); playback crosses it with a `gap` frame; the data on both sides
 * is still delivered, exactly.
 *
 * `tapedeck verify` did not report such a hole either (it checked no seq was missing); it does now.
 *
 * Real archives on disk, seeded (FORWARD_HOLES_SEED replays): rotated files of random batches,
 * one damage a copy; a truncated file cut within a frame and at a frame's end; a catalog kept
 * as the control (the contract the others must meet).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cp, open, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Archive } from '../storage/archive.js';
import type { Cursor } from '../storage/cursor.js';
import { readSeries } from '../storage/series-read.js';
import { BlockType } from '../storage/codec/frame.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { scanBlocks } from '../storage/segment-file.js';
import { reindexArchive } from '../storage/reindex.js';
import { verifyArchive } from '../storage/verify.js';
import { buildServer } from '../server/app.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { tapedeck } from './helpers/cli.js';
import { naiveState, plain } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { api, TestWs, type Frame } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const T0 = 1_700_000_000_000_000;
const FILES = 5; // rotated, then `current`
const PER_FILE = 30;
const STEP_US = 10_000;
const PATHS = 6;
const HOLE_CODES = ['TPD_FILE_UNAVAILABLE', 'TPD_CORRUPT_BLOCK'];

const text = (v: unknown): string => JSON.stringify(plain(v));

interface Written { batches: Batch[]; fileOf: number[]; names: string[] }

async function write(dir: string, r: () => number): Promise<Written> {
  const a = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
  const batches: Batch[] = [];
  const fileOf: number[] = [];
  for (let f = 0; f <= FILES; f++) {
    for (let i = 0; i < PER_FILE; i++) {
      const updates: Update[] = [];
      const used = new Set<number>();
      for (let u = 1 + Math.floor(r() * 3); u > 0; u--) {
        const p = Math.floor(r() * PATHS);
        if (used.has(p)) continue;
        used.add(p);
        updates.push([`/p/${p}`, r() < 0.2 ? `s${Math.floor(r() * 1000)}` : Math.floor(r() * 1e6)]);
      }
      const b = { ts: T0 + (f * PER_FILE + i) * STEP_US, updates };
      a.writer!.append(b.updates, b.ts);
      batches.push(b);
      fileOf.push(f);
      // Several delta blocks a file, so that a cut can fall between two of them.
      if (i % 10 === 9) await a.writer!.flush();
    }
    if (f < FILES) await a.writer!.rotate();
  }
  await a.writer!.flush();
  const names = a.files.filter((x) => x.sealed).map((x) => x.name);
  await a.close();
  return { batches, fileOf, names };
}

/** A damaged copy: which file, what was done, whether the catalog stays. */
interface Damage { label: string; victim: number; how: 'delete' | 'cut-in-frame' | 'cut-at-frame'; catalog: boolean }

async function damage(dir: string, w: Written, d: Damage, r: () => number): Promise<void> {
  const file = join(dir, w.names[d.victim] as string);
  if (d.how === 'delete') await unlink(file);
  else {
    const fh = await open(file, 'r');
    const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
    await fh.close();
    const deltas = blocks.filter((b) => b.type === BlockType.DELTA);
    // The last delta blocks are lost: cut within one of them, or at the end of the one before.
    const b = deltas[1 + Math.floor(r() * (deltas.length - 1))]!;
    await truncate(file, d.how === 'cut-at-frame' ? b.offset : b.offset + 1 + Math.floor(r() * (b.frameBytes - 1)));
  }
  if (!d.catalog) for (const x of ['catalog.sqlite', 'catalog.sqlite-wal', 'catalog.sqlite-shm']) await unlink(join(dir, x)).catch(() => undefined);
}

/** What a forward read gave: batches, and the gaps it crossed (fromUs, toUs) or the holes it reported. */
interface Read { got: Batch[]; gaps: Array<{ fromUs: number | null; toUs: number }>; codes: string[] }

/**
 * What every forward read must give: each batch recorded, in order, except batches lost in
 * the victim file, which a gap (or a reported hole) covers; at least one hole reported; and
 * every batch of the other files.
 */
function check(w: Written, d: Damage, read: Read, label: string): void {
  expect(read.codes.length, `${label}: the hole is reported`).toBeGreaterThan(0);
  for (const c of read.codes) expect(HOLE_CODES, label).toContain(c);
  const got = new Map(read.got.map((b) => [b.ts, text(b.updates)]));
  const ts = read.got.map((b) => b.ts);
  expect(ts, `${label}: in order, once each`).toEqual([...new Set(ts)].sort((x, y) => x - y));
  w.batches.forEach((b, i) => {
    const mine = got.get(b.ts);
    if (mine !== undefined) return expect(mine, `${label}: batch at ${b.ts}`).toBe(text(b.updates));
    expect(w.fileOf[i], `${label}: batch ${i} (at ${b.ts}) of file ${w.fileOf[i]} left out`).toBe(d.victim);
    if (read.gaps.length > 0) expect(read.gaps.some((g) => (g.fromUs === null || b.ts > g.fromUs) && b.ts <= g.toUs), `${label}: batch ${i} lost outside every gap`).toBe(true);
  });
  for (const g of read.gaps) for (const b of w.batches) if ((g.fromUs === null || b.ts > g.fromUs) && b.ts <= g.toUs) expect(got.has(b.ts), `${label}: gap covers a batch read`).toBe(false);
}

/** Reads forward from the beginning by next() or nextColumns(), crossing each hole as playback does. */
async function readCrossing(c: Cursor, paths: readonly string[], columns: boolean): Promise<Read> {
  const read: Read = { got: [], gaps: [], codes: [] };
  for (let turns = 0; turns < 10_000; turns++) {
    try {
      if (columns) {
        const v = await c.nextColumns();
        if (v === null) return read;
        let o = 0;
        while (o < v.otherCount && (v.otherAt[o] as number) < (v.starts[0] as number)) o++;
        for (let i = 0; i < v.batches; i++) {
          const updates: Update[] = [];
          for (let u = v.starts[i] as number; u < (v.starts[i + 1] as number); u++) {
            const value = o < v.otherCount && v.otherAt[o] === u ? (v.others[o++] as Value) : (v.nums[u] as number);
            updates.push([paths[v.ids[u] as number] as string, value]);
          }
          read.got.push({ ts: v.ts[i] as number, updates });
        }
      } else {
        const b = await c.next();
        if (b === null) return read;
        read.got.push(b);
      }
    } catch (err) {
      if (!isTapedeckError(err)) throw err;
      read.codes.push(err.code);
      const gap = await c.crossGone(err);
      expect(gap?.place, `crossed: ${err.code} ${err.message}`).toBeTruthy();
      read.gaps.push({ fromUs: gap!.fromUs, toUs: gap!.toUs });
    }
  }
  throw new Error('the read did not end');
}

const servers: Array<{ app: FastifyInstance; a: Archive }> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    await s.app.close();
    await s.a.close();
  }
});

async function serve(a: Archive): Promise<string> {
  const app = await buildServer({ archive: a, playback: { sessionGraceMs: 60_000 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  servers.push({ app, a });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

/** /history NDJSON from `fromUs`: the batches of the lines received, and how it ended (an error code, or undefined: whole). */
async function history(url: string, fromUs?: number): Promise<{ got: Batch[]; code: string | undefined }> {
  const q = fromUs === undefined ? '' : `&from=${fromUs}`;
  const res = await fetch(`${url}/api/v1/history?glob=/**${q}`);
  if (res.status !== 200) {
    const body = (await res.json()) as { error: { code: string } };
    return { got: [], code: body.error.code };
  }
  let body = '';
  let code: string | undefined;
  try {
    body = await res.text();
  } catch {
    // Cut mid-stream (the read failed after the first bytes): what arrived is kept.
    code = 'cut';
  }
  if (code === 'cut') body = '';
  const got = body.split('\n').filter((l) => l !== '').map((l) => {
    const o = JSON.parse(l) as { ts: number; updates: Record<string, unknown> };
    return { ts: o.ts, updates: Object.entries(o.updates) as Update[] };
  });
  return { got, code };
}

describe('a forward read across a hole no file entry names', () => {
  it('reports it (the code a seek gives, a gap frame in playback) and delivers the data on both sides', async () => {
    const seed = scheduleSeed('FORWARD_HOLES_SEED', 'forward holes');
    const r = rng(seed);
    const base = await tmpDir();
    const w = await write(base, r);
    expect(w.names.length).toBe(FILES);
    expect((await verifyArchive(base)).problems).toEqual([]);
    const middle = 1 + Math.floor(r() * (FILES - 2));
    const damages: Damage[] = [
      { label: 'a middle file deleted, no catalog', victim: middle, how: 'delete', catalog: false },
      { label: 'the first file deleted, no catalog', victim: 0, how: 'delete', catalog: false },
      { label: 'a middle file cut within a frame, no catalog', victim: middle, how: 'cut-in-frame', catalog: false },
      { label: 'a middle file cut at a frame end, no catalog', victim: middle, how: 'cut-at-frame', catalog: false },
      { label: 'a middle file cut at a frame end, catalog kept', victim: middle, how: 'cut-at-frame', catalog: true },
      { label: 'a middle file deleted, catalog kept (control)', victim: middle, how: 'delete', catalog: true },
    ];
    const tEnd = w.batches.at(-1)!.ts;
    for (const d of damages) {
      const label = `${d.label} (file ${d.victim}, seed ${seed})`;
      const dir = await tmpDir();
      await cp(base, dir, { recursive: true });
      await damage(dir, w, d, r);
      // verify names the hole too: a seq no file holds and no catalog row names.
      const v = await verifyArchive(dir);
      expect(v.ok, label).toBe(false);
      if (d.how === 'delete' && !d.catalog) expect(v.problems, label).toContainEqual(expect.objectContaining({ code: 'TPD_FILE_UNAVAILABLE', message: expect.stringContaining(`holds seq ${d.victim} and`) }));

      // Read-only (inspect, export, a read-only server): cursors, the per-series read.
      const a = await Archive.open(dir, { readonly: true });
      for (const columns of [false, true]) {
        check(w, d, await readCrossing(a.cursor(), a.paths, columns), `${label}, ${columns ? 'nextColumns' : 'next'}`);
        check(w, d, await readCrossing(a.cursor({ filter: ['/p/0', '/p/1', '/p/2', '/p/3', '/p/4', '/p/5'], selective: true }), a.paths, columns), `${label}, selective ${columns ? 'nextColumns' : 'next'}`);
      }
      const crossing = await readCrossing(a.cursor(), a.paths, false);
      const afterUs = Math.max(...crossing.gaps.map((g) => g.toUs));
      const ids = [...Array(PATHS).keys()].map((p) => a.pathIds.get(`/p/${p}`)!);
      const series = async (fromUs: number): Promise<string[]> => {
        const out: string[] = [];
        for await (const chunk of readSeries(a, ids, fromUs, tEnd, { sidecars: false })) {
          for (const p of chunk) for (let i = p.from; i < p.to; i++) out.push(`${a.paths[p.id]} ${p.run.ts[i]} ${text(p.run.values !== undefined ? p.run.values[i] : p.run.num![i])}`);
        }
        return out.sort();
      };
      const want = (fromUs: number): string[] => w.batches.filter((b) => b.ts >= fromUs).flatMap((b) => b.updates.map(([p, v]) => `${p} ${b.ts} ${text(v)}`)).sort();
      await expect(series(T0), `${label}: per-series read`).rejects.toSatisfy((e: unknown) => isTapedeckError(e) && HOLE_CODES.includes(e.code));
      expect(await series(afterUs + 1), `${label}: per-series read after the hole`).toEqual(want(afterUs + 1));
      // Steps back across the hole fail as a seek into it does, never count its batches as none.
      const back = a.cursor();
      await back.seek({ ts: afterUs + STEP_US * 2 });
      await expect(back.seek({ batches: -(PER_FILE * 2) }), `${label}: step back`).rejects.toSatisfy((e: unknown) => isTapedeckError(e) && HOLE_CODES.includes(e.code));

      // A read-only server: /history (the hole ends the answer with an error), WebSocket playback (a gap frame).
      const url = await serve(a);
      const h = await history(url);
      expect(h.code, `${label}: /history reports the hole`).toBeDefined();
      if (h.code !== 'cut') expect(HOLE_CODES, label).toContain(h.code);
      expect(h.got.map((b) => [b.ts, text(b.updates)]), `${label}: /history before the hole`).toEqual(w.batches.slice(0, h.got.length).map((b) => [b.ts, text(b.updates)]));
      const after = await history(url, afterUs + 1);
      expect([after.code, after.got.map((b) => [b.ts, text(b.updates)])], `${label}: /history after the hole`).toEqual([undefined, w.batches.filter((b) => b.ts > afterUs).map((b) => [b.ts, text(b.updates)])]);
      // /diff folds (start, end] file by file: the hole fails it; from the hole's end on it answers.
      const diffAll = await api(url, 'GET', `/api/v1/diff?start=${T0}&end=${tEnd}`);
      expect(HOLE_CODES, `${label}: /diff ${diffAll.status} ${JSON.stringify(diffAll.body).slice(0, 300)}`).toContain(diffAll.body.error?.code);
      const diffAfter = await api(url, 'GET', `/api/v1/diff?start=${afterUs}&end=${tEnd}`);
      expect(diffAfter.status, `${label}: /diff after the hole`).toBe(200);
      const updatesAfter = new Map<string, number>();
      for (const b of w.batches) if (b.ts > afterUs) for (const [p] of b.updates) updatesAfter.set(p, (updatesAfter.get(p) ?? 0) + 1);
      for (const p of diffAfter.body.paths as Array<{ path: string; updates: number }>) expect(p.updates, `${label}: /diff after the hole, ${p.path}`).toBe(updatesAfter.get(p.path));
      for (const speed of ['unlimited', 200] as const) {
        const created = await api(url, 'POST', '/api/v1/sessions', { pos: 'beginning', end: tEnd, speed });
        expect([created.status, created.body.error], label).toEqual([201, undefined]);
        const ws = await TestWs.open(`${url}/api/v1/sessions/${created.body.id as string}/stream`);
        const last = await ws.next((f) => f.type === 'end' || f.type === 'error', 20_000);
        ws.close();
        const frames: Frame[] = [...ws.frames, last];
        expect(last.type, `${label}, playback at ${speed}: ${JSON.stringify(last)}`).toBe('end');
        const read: Read = { got: [], gaps: [], codes: [] };
        let stateAt: number | undefined;
        for (const f of frames) {
          if (f.type === 'gap') {
            read.gaps.push({ fromUs: f.fromUs as number | null, toUs: f.toUs as number });
            read.codes.push(/TPD_CORRUPT_BLOCK|damaged/.test(f.message as string) ? 'TPD_CORRUPT_BLOCK' : 'TPD_FILE_UNAVAILABLE');
            stateAt = f.toUs as number;
          } else if (f.type === 'state' && stateAt !== undefined) {
            expect(text(f.values), `${label}: state after the gap`).toBe(text(Object.fromEntries(naiveState(w.batches, stateAt))));
            stateAt = undefined;
          } else if (f.type === 'batch') read.got.push({ ts: f.ts as number, updates: f.updates as Update[] });
        }
        check(w, d, read, `${label}, playback at ${speed}`);
      }
      await servers.pop()!.app.close();
      await a.close();

      // The command line, read-only: export fails naming the hole (and leaves no file), inspect --head too.
      const out = join(dir, 'export.ndjson');
      const ex = await tapedeck('export', '--archive', dir, '--out', out);
      expect([ex.code, HOLE_CODES.some((c) => ex.stderr.includes(c))], `${label}: export: ${ex.stderr}`).toEqual([1, true]);
      const ins = await tapedeck('inspect', dir, '--head', String(w.batches.length), '--json');
      expect([ins.code, HOLE_CODES.some((c) => ins.stderr.includes(c))], `${label}: inspect --head: ${ins.stderr}`).toEqual([1, true]);

      if (d.catalog) continue;
      // Reindexed (the catalog rebuilt from the files), then opened for writing: the same.
      const re = await reindexArchive(dir);
      await re.close();
      const wr = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
      try {
        check(w, d, await readCrossing(wr.cursor(), wr.paths, false), `${label}, reindexed`);
      } finally {
        await wr.close();
      }
    }
  }, 240_000);
});
