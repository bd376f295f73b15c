/**
 * A batch that lists a path twice (older writers; docs/format.md: "a path may be listed many
 * times in a batch"; the storage API still records it, the sources refuse it). /history wrote
 * an NDJSON line with the same key twice in its `updates` object (JavaScript reads the last,
 * other parsers the first). The rule (server/batch-paths.ts): the path's last update in the
 * batch is its value, as replay and the state apply a batch's updates in order; an NDJSON
 * object names it once, at the place of its first update. CSV and Parquet rows are every
 * update in order, as recorded and as playback sends them (a row log is not ambiguous, and a
 * merged cluster's tie of shards' batches must equal one archive's joined batch, test/
 * cluster-merge-overlap). /history, `tapedeck export`, /state and WebSocket playback agree on
 * every batch.
 *
 * Seeded (REPEATED_PATH_SEED replays).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parquetReadObjects } from 'hyparquet';
import { Archive } from '../storage/archive.js';
import { buildServer } from '../server/app.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { tapedeck } from './helpers/cli.js';
import { scheduleSeed } from './helpers/seed.js';
import { api, TestWs } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const T0 = 1_700_000_000_000_000;
const STEP_US = 1_000;

/** Batches of few paths, about half of them listing a path two or three times; simple values (JSON text as JSON.stringify writes it). */
function batches(r: () => number): Batch[] {
  const out: Batch[] = [
    { ts: T0, updates: [['/a', 1], ['/b', 2], ['/a', 3]] },
    { ts: T0 + STEP_US, updates: [['/a', 'x'], ['/a', null]] },
    { ts: T0 + 2 * STEP_US, updates: [['/c', 1], ['/b', true], ['/c', 2], ['/c', 3]] },
  ];
  const value = (): Value => (r() < 0.15 ? null : r() < 0.3 ? `s${Math.floor(r() * 100)}` : r() < 0.4 ? r() < 0.5 : Math.floor(r() * 1e6));
  for (let i = 3; i < 200; i++) {
    const updates: Update[] = [];
    for (let n = 1 + Math.floor(r() * 5); n > 0; n--) updates.push([`/p/${Math.floor(r() * 4)}`, value()]);
    out.push({ ts: T0 + i * STEP_US, updates });
  }
  return out;
}

/** The rule: each path once, its last value, at its first place. */
function once(b: Batch): Array<[string, Value]> {
  const m = new Map<string, Value>();
  for (const [p, v] of b.updates) m.set(p, v);
  return [...m];
}

const servers: Array<{ app: FastifyInstance; a: Archive }> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    await s.app.close();
    await s.a.close();
  }
});

describe('a batch listing a path twice', () => {
  it('is answered with the path once, its last update, by /history NDJSON and export, every update by CSV and Parquet, as /state and playback apply them', async () => {
    const seed = scheduleSeed('REPEATED_PATH_SEED', 'repeated path');
    const recorded = batches(rng(seed));
    expect(recorded.filter((b) => once(b).length < b.updates.length).length).toBeGreaterThan(50);
    const dir = await tmpDir();
    const w = await Archive.open(dir, { flushIntervalMs: 0, rotateIntervalMs: 0 });
    for (const [i, b] of recorded.entries()) {
      w.writer!.append(b.updates, b.ts);
      if (i === 100) await w.writer!.rotate();
    }
    await w.writer!.flush();
    await w.close();
    // The archive holds the batches as recorded, each path as often as it was listed.
    const check = await Archive.open(dir, { readonly: true });
    const c = check.cursor();
    for (const b of recorded) expect((await c.next())?.updates).toEqual(b.updates);
    await check.close();

    const a = await Archive.open(dir, { readonly: true });
    const app = await buildServer({ archive: a, playback: { sessionGraceMs: 60_000 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    servers.push({ app, a });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const tEnd = recorded.at(-1)!.ts;
    const label = (b: Batch): string => `batch at ${b.ts} ${JSON.stringify(b.updates)} (seed ${seed})`;

    // NDJSON: each line's text is the batch with each path once (no key twice in the text).
    const ndjson = await (await fetch(`${url}/api/v1/history?glob=/**&from=${T0}&to=${tEnd}`)).text();
    const lines = ndjson.split('\n').filter((l) => l !== '');
    expect(lines.length).toBe(recorded.length);
    recorded.forEach((b, i) => {
      const updates = `{${once(b).map(([p, v]) => `${JSON.stringify(p)}:${JSON.stringify(v)}`).join(',')}}`;
      expect(lines[i], label(b)).toBe(`{"ts":${b.ts},"time":${JSON.stringify(JSON.parse(lines[i]!).time)},"updates":${updates}}`);
    });
    // export writes the same bytes.
    const out = join(dir, '..', `export-${seed}.ndjson`);
    const ex = await tapedeck('export', '--archive', dir, '--out', out, '--from', String(T0));
    expect([ex.code, ex.stderr]).toEqual([0, expect.stringContaining(`exported ${recorded.length} batches`)]);
    expect(await readFile(out, 'utf8')).toBe(ndjson);

    // CSV: one row an update, in order, as recorded (the last row of a path at a time is its value).
    const csv = (await (await fetch(`${url}/api/v1/history?glob=/**&from=${T0}&to=${tEnd}&format=csv`)).text()).split('\n').slice(1).filter((l) => l !== '');
    const csvWant = recorded.flatMap((b) => b.updates.map(([p, v]) => `${b.ts},${p},${String(v)}`));
    expect(csv.map((row) => row.replace(/^(\d+),[^,]+,/, '$1,'))).toEqual(csvWant);

    // Parquet: one row an update, in order, as recorded.
    const file = await (await fetch(`${url}/api/v1/history?glob=/**&from=${T0}&to=${tEnd}&format=parquet`)).arrayBuffer();
    const rows = (await parquetReadObjects({ file, parsers: { timestampFromMicroseconds: (us: bigint) => us } as never })) as Array<Record<string, unknown>>;
    const cell = (r: Record<string, unknown>): unknown => (r.kind === 'null' ? null : (['bool', 'num', 'int', 'str'].map((k) => r[k]).find((x) => x !== null && x !== undefined)));
    expect(rows.map((r) => `${String(r.ts)} ${String(r.path)} ${JSON.stringify(typeof cell(r) === 'bigint' ? Number(cell(r)) : cell(r))}`))
      .toEqual(recorded.flatMap((b) => b.updates.map(([p, v]) => `${b.ts} ${p} ${JSON.stringify(v)}`)));

    // /state at each batch, the state the history's lines give, and playback's batches applied in order agree.
    const created = await api(url, 'POST', '/api/v1/sessions', { pos: 'beginning', end: tEnd, speed: 'unlimited' });
    expect(created.status).toBe(201);
    const ws = await TestWs.open(`${url}/api/v1/sessions/${created.body.id as string}/stream`);
    const played = await ws.batches(recorded.length, 20_000);
    ws.close();
    const fromHistory: Record<string, unknown> = {};
    const replayed: Record<string, unknown> = {};
    for (const [i, b] of recorded.entries()) {
      Object.assign(fromHistory, (JSON.parse(lines[i]!) as { updates: object }).updates);
      expect(played[i]!.updates, label(b)).toEqual(b.updates);
      for (const [p, v] of played[i]!.updates) replayed[p] = v;
      const state = (await api(url, 'GET', `/api/v1/state?glob=/**&at=${b.ts}`)).body as { ts: number; values: Record<string, unknown> };
      expect([state.ts, state.values], label(b)).toEqual([b.ts, fromHistory]);
      expect(replayed, label(b)).toEqual(fromHistory);
    }
  }, 120_000);
});
