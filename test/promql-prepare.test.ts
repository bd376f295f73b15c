/**
 * The query API's preparation at start (server/promql/prepare.ts: sidecar indexes and the
 * series catalog, in the background): a query sent at any moment of it, before, during or
 * after, gets the bytes a server without preparation answers; /ready says `promql` is not
 * ready until it ends; a sidecar being loaded is loaded once for every reader waiting on it;
 * a damaged sidecar found by the preparation is not used (the blocks answer); an archive
 * past promqlPrepareCatalogPathsMax builds its catalog at its first query. (The query path's
 * warm-up: test/promql-warm-up.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cp, readFile } from 'node:fs/promises';
import { Archive } from '../storage/index.js';
import { seriesToPath } from '../protocol/prom-path.js';
import type { FileEntry } from '../storage/file-list.js';
import { filesToPrepare, promqlReadiness, startPromqlPreparation } from '../server/promql/prepare.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { identityOf, sidecarPath } from '../storage/series-index/build.js';
import { decodeHeader } from '../storage/series-index/format.js';
import { xorByte } from './helpers/damage.js';
import { QUERIES, T0_MS, ask, build, ready, reference, serve, stopServed } from './helpers/promql-prepare.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const limits = SERVER_LIMITS as { -readonly [K in keyof typeof SERVER_LIMITS]: number };
const saved = { ...SERVER_LIMITS };
afterEach(async () => {
  await stopServed();
  Object.assign(limits, saved);
});

describe('PromQL preparation at start', () => {
  it('a query sent at any moment of the preparation gets the answer of a server without one; /ready waits for it', async () => {
    const seed = scheduleSeed('PROMQL_PREPARE_SEED', 'promql-prepare');
    const dir = await build(seed);
    const want = await reference(dir);
    let during = 0;
    let after = 0;
    // Sent after 0, 1, 2, ... turns of the event loop from the start of the preparation, until it had ended first.
    for (let turns = 0; turns < 200 && after < 2; turns++) {
      const s = await serve(dir);
      expect((await ready(s.url)).promql, 'no check before a preparation starts').toBeUndefined();
      let done = false;
      const finished = startPromqlPreparation(s.a).then(() => {
        done = true;
      });
      for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      const wasDone = done;
      if (wasDone) after++;
      else {
        during++;
        const r = await ready(s.url);
        // Ended meanwhile (the request took turns too), else not ready.
        if (!done) expect(r.status, `turn ${turns} (seed ${seed})`).toBe(503);
        if (!done) expect(r.promql?.ok).toBe(false);
      }
      const q = (turns * 7) % QUERIES.length;
      const got = await Promise.all(QUERIES.map((query, i) => (i === q ? ask(s.url, query) : Promise.resolve(undefined))));
      expect(got[q], `${QUERIES[q]} sent after ${turns} turns, ${wasDone ? 'after' : 'during'} the preparation (seed ${seed})`).toBe(want[q]);
      await finished;
      const r = await ready(s.url);
      expect(r.status).toBe(200);
      expect(r.promql).toEqual({ check: 'promql', ok: true, detail: `3 sidecar indexes loaded, series catalog of ${s.a.paths.length} paths built` });
      for (const [i, query] of QUERIES.entries()) expect(await ask(s.url, query), `${query} after (seed ${seed})`).toBe(want[i]);
    }
    expect(during).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(0);
  });

  it('loads a sidecar once for every reader waiting on it', async () => {
    const dir = await build(scheduleSeed('PROMQL_PREPARE_SEED', 'promql-prepare-once'));
    const s = await serve(dir);
    const f = s.a.files.find((x) => x.sealed) as FileEntry;
    const store = seriesIndexOf(s.a);
    const [x, y, z] = await Promise.all([store.indexOf(f), store.indexOf(f), startPromqlPreparation(s.a).then(() => store.indexOf(f))]);
    expect(x).toBeDefined();
    expect(y).toBe(x);
    expect(z).toBe(x);
  });

  it('a damaged sidecar found by the preparation is not used: the blocks answer, and /ready says what was loaded', async () => {
    const seed = scheduleSeed('PROMQL_PREPARE_SEED', 'promql-prepare-damage');
    const rand = rng(seed);
    const dir = await build(seed);
    const want = await reference(dir);
    const copy = await tmpDir();
    await cp(dir, copy, { recursive: true });
    const s0 = await serve(copy);
    const f = s0.a.files.filter((x) => x.sealed).at(-1) as FileEntry;
    const file = sidecarPath(s0.a, f.name);
    const pristine = await readFile(file);
    const h = decodeHeader(pristine, identityOf(s0.a, f) as NonNullable<ReturnType<typeof identityOf>>, pristine.length);
    // A byte of the index (its CRC32C fails) or of the header.
    await xorByte(file, rand() < 0.5 ? h.indexOffset + Math.floor(rand() * h.indexBytes) : Math.floor(rand() * 80), 1 << Math.floor(rand() * 8));
    const s = await serve(copy);
    await startPromqlPreparation(s.a);
    expect(seriesIndexOf(s.a).stats.damaged, `seed ${seed}`).toBe(1);
    expect((await ready(s.url)).promql).toEqual({ check: 'promql', ok: true, detail: `2 sidecar indexes loaded, series catalog of ${s.a.paths.length} paths built` });
    for (const [i, query] of QUERIES.entries()) expect(await ask(s.url, query), `${query} (seed ${seed})`).toBe(want[i]);
  });

  it('with no sidecar to load (no sealed file), it is done as it starts: the server is ready at once', async () => {
    const dir = await tmpDir();
    const w = await Archive.open(dir, { flushIntervalMs: 0 });
    w.writer!.append([[seriesToPath({ name: 'g', labels: { instance: 'a' } }), 1], ['/plain/x', 2]], T0_MS * 1000);
    await w.writer!.flush();
    await w.close();
    const s = await serve(dir);
    void startPromqlPreparation(s.a);
    // Before any turn of the event loop.
    expect(promqlReadiness(s.a)).toEqual([{ check: 'promql', ok: true, detail: '0 sidecar indexes loaded, series catalog of 2 paths built' }]);
    expect((await ready(s.url)).status).toBe(200);
  });

  it('past promqlPrepareCatalogPathsMax paths, the catalog is built at the first query', async () => {
    const dir = await build(scheduleSeed('PROMQL_PREPARE_SEED', 'promql-prepare-large'));
    const want = await reference(dir);
    limits.promqlPrepareCatalogPathsMax = 5;
    const s = await serve(dir);
    await startPromqlPreparation(s.a);
    expect((await ready(s.url)).promql?.detail).toBe(`3 sidecar indexes loaded; the series catalog of ${s.a.paths.length} paths is built at the first query (promqlPrepareCatalogPathsMax)`);
    for (const [i, query] of QUERIES.entries()) expect(await ask(s.url, query)).toBe(want[i]);
  });

  it('loads the sidecars of sealed local files ending within promqlPrepareSpanMs of the newest, newest first, at most seriesIndexOpenMax', () => {
    const hourUs = 3_600_000_000;
    const file = (seq: number, lastH: number | null, sealed = true, location: FileEntry['location'] = 'local'): FileEntry => ({ seq, name: `f${seq}`, location, firstTs: lastH === null ? null : (lastH - 1) * hourUs, lastTs: lastH === null ? null : lastH * hourUs, committedBytes: 1, sealed, damaged: false, table: undefined, gen: 0, replaced: undefined });
    const files = [file(1, 10), file(2, 40), file(3, 60), file(4, 70, true, 'remote'), file(5, 80), file(6, 81, false), file(7, null)];
    limits.promqlPrepareSpanMs = 24 * 3_600_000;
    expect(filesToPrepare(files).map((f) => f.seq)).toEqual([5, 3]);
    limits.promqlPrepareSpanMs = 41 * 3_600_000;
    expect(filesToPrepare(files).map((f) => f.seq)).toEqual([5, 3, 2]);
    expect(filesToPrepare([])).toEqual([]);
    expect(filesToPrepare(Array.from({ length: 40 }, (_, i) => file(i + 1, 100 + i))).length).toBe(16);
  });
});
