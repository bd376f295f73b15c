/**
 * A full disk, for real: the archive lives on a 4 MiB tmpfs, a filler file takes the rest
 * of the space, and the writer has to keep everything it accepted, refuse more with
 * TPD_DISK_FULL, keep serving reads, and resume by itself once the filler is deleted.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { pino } from 'pino';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { isTapedeckError } from '../protocol/errors.js';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import type { Batch } from '../protocol/value.js';
import { rng } from './helpers/workload.js';
import { plain, readAll } from './helpers/replay.js';
import { until } from './helpers/until.js';
import { authedCall } from './helpers/server.js';
import { fillDisk, useTmpfs } from './helpers/tmpfs.js';

const tmpfs = useTmpfs('tapedeck-tmpfs-', 'disk-full tests');
let dirs = 0;

afterEach(async () => {
  if (!tmpfs.mounted) return;
  for (const e of await readdir(tmpfs.dir)) await rm(join(tmpfs.dir, e), { recursive: true, force: true });
});

function needsMount(ctx: TestContext): string {
  if (!tmpfs.mounted) ctx.skip();
  return join(tmpfs.dir, `t${dirs++}`);
}

const SEED = 20261201;

/** Batch i: a few paths with random hex strings, so blocks hardly compress. */
function batch(i: number): Batch {
  const r = rng(SEED + i);
  const updates: Batch['updates'] = [];
  for (let j = 0; j < 8; j++) {
    let s = '';
    while (s.length < 400) s += Math.floor(r() * 2 ** 32).toString(16);
    updates.push([`/dev/${(i * 8 + j) % 97}`, s]);
  }
  return { ts: 1_800_000_000_000_000 + i * 1000, updates };
}

async function readBatches(a: Archive): Promise<Batch[]> {
  return plain(await readAll(a.cursor()));
}

const fastRetry = { retryMs: 10, retryMaxMs: 40, bufferBytesMax: 512 * 1024, ackWaitMs: 200 };

describe('a full disk', () => {
  it('keeps every accepted batch, refuses more with TPD_DISK_FULL, serves reads and resumes by itself', async (ctx) => {
    const dir = needsMount(ctx);
    console.log(`disk-full workload seed ${SEED}`);
    const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 256 * 1024 });
    const w = a.writer!;
    w.setDiskFullLimits(fastRetry);
    const events: string[] = [];
    a.on('disk-full', () => events.push('disk-full'));
    a.on('disk-ok', () => events.push('disk-ok'));
    const accepted: Batch[] = [];
    let i = 0;
    for (; i < 20; i++) {
      const b = batch(i);
      w.append(b.updates, b.ts);
      accepted.push(b);
    }
    await w.flush();
    const filler = await fillDisk(tmpfs.dir);

    // Append, asking for durability every 25 batches, until the writer says the disk is full.
    const durable: number[] = [];
    const refusedDurable: number[] = [];
    const asked: Array<Promise<void>> = [];
    let refusal: unknown;
    for (; i < 5000 && refusal === undefined; i++) {
      const b = batch(i);
      try {
        w.append(b.updates, b.ts);
      } catch (err) {
        refusal = err;
        break;
      }
      accepted.push(b);
      if (i % 25 === 0) {
        asked.push(w.whenDurable(b.ts).then(() => void durable.push(b.ts), (err: unknown) => {
          expect(err).toMatchObject({ code: 'TPD_DISK_FULL' });
          refusedDurable.push(b.ts);
        }));
        await new Promise((r) => setImmediate(r)); // the pump gets its turn
      }
    }
    expect(refusal).toMatchObject({ code: 'TPD_DISK_FULL', status: 507 });
    expect(w.health.state).toBe('disk_full');
    expect(w.health.bufferedBytes).toBeGreaterThanOrEqual(fastRetry.bufferBytesMax);
    expect(events).toEqual(['disk-full']);
    // Refused again while full; an acknowledgement gets a clear answer rather than waiting forever.
    expect(() => w.append(batch(i).updates, batch(i).ts)).toThrow(expect.objectContaining({ code: 'TPD_DISK_FULL' }));
    await expect(w.whenDurable(accepted.at(-1)!.ts)).rejects.toMatchObject({ code: 'TPD_DISK_FULL' });
    await expect(w.flush()).rejects.toMatchObject({ code: 'TPD_DISK_FULL' });
    await Promise.all(asked);
    expect(refusedDurable.length).toBeGreaterThan(0);

    // Reads serve what was committed: a prefix of what was accepted, holding every durable batch.
    const committed = await readBatches(a);
    expect(committed).toStrictEqual(accepted.slice(0, committed.length));
    expect(committed.length).toBeLessThan(accepted.length);
    const committedTs = new Set(committed.map((b) => b.ts));
    for (const ts of durable) expect(committedTs.has(ts)).toBe(true);

    await rm(filler);
    await until(() => w.health.state === 'ok', 10_000, 'the writer to resume after space returned');
    expect(events).toEqual(['disk-full', 'disk-ok']);
    await w.flush();
    expect(await readBatches(a)).toStrictEqual(accepted);
    // Recording goes on.
    const more = batch(i);
    await w.whenDurable(w.append(more.updates, more.ts));
    accepted.push(more);
    await a.close();

    const b = await Archive.open(dir, { flushIntervalMs: 0 });
    expect(await readBatches(b)).toStrictEqual(accepted);
    await b.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('finishes a rotation that the full disk stopped while creating the new file', async (ctx) => {
    const dir = needsMount(ctx);
    const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 0 });
    const w = a.writer!;
    w.setDiskFullLimits({ ...fastRetry, ackWaitMs: 600_000 });
    const accepted: Batch[] = [];
    // Every path holds a large value, so the new file's image is large too.
    for (let i = 0; i < 60; i++) {
      const b = batch(i);
      w.append(b.updates, b.ts);
      accepted.push(b);
    }
    await w.flush();
    const filler = await fillDisk(tmpfs.dir);
    const rotated = w.rotate();
    await until(() => w.health.state === 'disk_full', 10_000, 'the rotation to hit the full disk');
    // `current` was renamed and the new one cannot be written yet: still readable, still taking batches.
    expect((await readdir(dir)).filter((n) => n === 'current')).toEqual([]);
    expect(await readBatches(a)).toStrictEqual(accepted);
    for (let i = 60; i < 70; i++) {
      const b = batch(i);
      w.append(b.updates, b.ts);
      accepted.push(b);
    }
    await rm(filler);
    await rotated;
    await w.flush();
    expect(w.health.state).toBe('ok');
    expect(w.stats.rotations).toBe(1);
    expect(await readBatches(a)).toStrictEqual(accepted);
    await a.close();
    const b = await Archive.open(dir, { readonly: true });
    expect(b.files.map((f) => f.name).at(-1)).toBe('current');
    expect(b.files).toHaveLength(2);
    expect(await readBatches(b)).toStrictEqual(accepted);
    await b.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('a close on a full disk gives up after the acknowledgement wait and keeps what was committed', async (ctx) => {
    const dir = needsMount(ctx);
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    a.writer!.setDiskFullLimits(fastRetry);
    const committed = [batch(0), batch(1)];
    for (const b of committed) a.writer!.append(b.updates, b.ts);
    await a.writer!.flush();
    const filler = await fillDisk(tmpfs.dir);
    for (let i = 2; i < 200; i++) a.writer!.append(batch(i).updates, batch(i).ts);
    await expect(a.close()).rejects.toMatchObject({ code: 'TPD_DISK_FULL' });
    // Nothing more is taken or retried once closed (no busy retry loop on a full disk).
    await expect(a.writer!.flush()).rejects.toMatchObject({ code: 'TPD_ARCHIVE_CLOSED' });
    await expect(a.writer!.rotate()).rejects.toMatchObject({ code: 'TPD_ARCHIVE_CLOSED' });
    expect(a.writer!.health.state).toBe('disk_full');
    await rm(filler);
    const b = await Archive.open(dir, { flushIntervalMs: 0 });
    expect(await readBatches(b)).toStrictEqual(committed);
    await b.close();
    expect((await verifyArchive(dir)).ok).toBe(true);
  });

  it('a server on a full disk: /ready names it, the metric says so, pushes are refused, queries answer, recording resumes', async (ctx) => {
    const dir = needsMount(ctx);
    const config = resolveConfig({
      archive_directory: dir,
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: 'push', type: 'push' }],
    });
    const srv = await startServer(config, { logger: pino({ level: 'silent' }) });
    try {
      const w = srv.archive.writer!;
      w.setDiskFullLimits(fastRetry);
      const push = (from: number, n: number): Promise<{ status: number; body: unknown }> => {
        const lines = Array.from({ length: n }, (_, k) => {
          const b = batch(from + k);
          return JSON.stringify({ ts: b.ts / 1000, updates: Object.fromEntries(b.updates) });
        });
        return authedCall(srv.url, 'POST', '/api/v1/ingest', undefined, `${lines.join('\n')}\n`);
      };
      const first = await push(0, 10);
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      await srv.recorder!.flush();
      expect((await authedCall(srv.url, 'GET', '/ready')).status).toBe(200);
      const filler = await fillDisk(tmpfs.dir);

      // Push until the server refuses for the full disk.
      let next = 10;
      let refused: { status: number; body: unknown } | undefined;
      while (next < 20_000 && !refused) {
        const r = await push(next, 50);
        if (r.status !== 200) refused = r;
        else next += 50;
        if (w.health.state === 'disk_full' && !refused) srv.recorder!.flush().catch(() => undefined);
      }
      expect(refused?.status).toBe(507);
      expect(refused?.body).toMatchObject({ error: { code: 'TPD_DISK_FULL' } });
      const ready = await authedCall(srv.url, 'GET', '/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.error.message).toMatch(/full/);
      const metrics = (await authedCall(srv.url, 'GET', '/metrics')).body as string;
      expect(metrics).toMatch(/^tapedeck_archive_disk_full 1$/m);
      expect(metrics).toMatch(/^tapedeck_archive_buffered_bytes [1-9]\d*$/m);
      // Queries keep answering from memory and from committed blocks.
      const state = await authedCall(srv.url, 'GET', '/api/v1/state');
      expect(state.status).toBe(200);

      await rm(filler);
      await until(async () => (await authedCall(srv.url, 'GET', '/ready')).status === 200, 10_000, '/ready after space returned');
      const metricsAfter = (await authedCall(srv.url, 'GET', '/metrics')).body as string;
      expect(metricsAfter).toMatch(/^tapedeck_archive_disk_full 0$/m);
      const after = await push(next, 10);
      expect(after.status, JSON.stringify(after.body)).toBe(200);
      await srv.recorder!.flush();
      // Every line the server answered 200 for is in the archive, in order, once.
      const kept = (await readBatches(srv.archive)).map((b) => b.ts);
      const expected = [...Array.from({ length: next }, (_, k) => batch(k).ts), ...Array.from({ length: 10 }, (_, k) => batch(next + k).ts)];
      expect(kept.slice(0, next)).toEqual(expected.slice(0, next));
      expect(kept.slice(-10)).toEqual(expected.slice(-10));
      expect(new Set(kept).size).toBe(kept.length);
    } finally {
      await srv.close().catch((err: unknown) => {
        if (!isTapedeckError(err)) throw err;
      });
    }
  });
});
