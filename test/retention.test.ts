import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Archive, type OpenOptions } from '../storage/archive.js';
import { ColdStorage, type ColdEvent, type ColdOptions } from '../storage/cold.js';
import { buildServer } from '../server/app.js';
import { sidecarPath } from '../storage/series-index/build.js';
import { tmpDir } from './helpers/tmp.js';

const FIX = resolve('test/fixtures/hooks');
const T0 = 1_700_000_000_000_000;
const HOUR_US = 3_600_000_000;

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Setup {
  dir: string;
  cold: string;
  a: Archive;
  c: ColdStorage;
  /** Rotated file names, oldest first. */
  names: string[];
}

/** An archive with one rotated file per start time (µs), each shipped by put-copy.sh. */
async function setup(starts: number[], opts: Omit<ColdOptions, 'hooks'>, storage: OpenOptions = {}, put = 'put-copy.sh'): Promise<Setup> {
  const base = await tmpDir('tapedeck-ret-');
  const cold = join(base, 'cold');
  await mkdir(cold);
  const dir = join(base, 'archive');
  const a = await Archive.open(dir, { flushIntervalMs: 0, ...storage });
  cleanup.push(() => a.close());
  const c = await ColdStorage.start(a, { hooks: { put: { cmd: join(FIX, put), args: [cold] } }, checkIntervalMs: 0, listIntervalMs: 0, ...opts });
  cleanup.push(() => c.stop());
  const names: string[] = [];
  for (const t of starts) {
    for (let i = 0; i < 100; i++) a.writer!.append([['/v', i], ['/t', t]], t + i * 1000);
    const put = new Promise<ColdEvent>((done) => c.once('event', done));
    await a.writer!.rotate();
    const e = await put;
    expect(e).toMatchObject({ type: 'put' });
    names.push((e as { name: string }).name);
  }
  return { dir, cold, a, c, names };
}

const locations = (a: Archive): string[] => a.files.map((f) => f.location);

describe('local retention', () => {
  it('evicts shipped files older than max_age and keeps newer ones', async () => {
    const now = T0 + 10 * HOUR_US;
    const s = await setup([T0, T0 + 5 * HOUR_US, T0 + 9 * HOUR_US], { retention: { maxAgeMs: 3_600_000 * 2, maxBytes: 0 } }, { clockUs: () => now });
    await s.c.check();
    expect(locations(s.a)).toEqual(['remote', 'remote', 'local', 'local']);
    const onDisk = await readdir(s.dir);
    expect(onDisk).not.toContain(s.names[0]);
    expect(onDisk).not.toContain(s.names[1]);
    expect(onDisk).toContain(s.names[2]);
    expect(s.c.stats.evicted).toBe(2);
  });

  it('counts the per-series sidecars of local files against max_bytes', async () => {
    const base = await setup([T0, T0 + HOUR_US, T0 + 2 * HOUR_US], { retention: { maxAgeMs: 0, maxBytes: 0 } });
    const budget = base.a.files.reduce((n, f) => n + f.committedBytes, 0);
    await base.c.stop();
    // Segments alone fit the budget exactly; a sidecar of the newest rotated file puts the
    // disk 100 bytes over it (a sidecar can be twice its segment's size).
    const side = sidecarPath(base.a, base.names[2] as string);
    await mkdir(dirname(side), { recursive: true });
    await writeFile(side, new Uint8Array(100));
    const c = await ColdStorage.start(base.a, { hooks: { put: { cmd: join(FIX, 'put-copy.sh'), args: [base.cold] } }, checkIntervalMs: 0, retention: { maxAgeMs: 0, maxBytes: budget } });
    cleanup.push(() => c.stop());
    await c.check();
    expect(base.a.files[0]!.committedBytes).toBeGreaterThan(100);
    expect(locations(base.a)).toEqual(['remote', 'local', 'local', 'local']);
  });

  it('evicts the oldest shipped files while local files exceed max_bytes; evicted files stay in the catalog', async () => {
    const base = await setup([T0, T0 + HOUR_US, T0 + 2 * HOUR_US], { retention: { maxAgeMs: 0, maxBytes: 0 } });
    const [f0, f1, f2, cur] = base.a.files;
    const budget = f1!.committedBytes + f2!.committedBytes + cur!.committedBytes;
    await base.c.stop();
    // Restarted with a budget for all but the oldest file; put status comes from the catalog.
    const c = await ColdStorage.start(base.a, { hooks: { put: { cmd: join(FIX, 'put-copy.sh'), args: [base.cold] } }, checkIntervalMs: 0, retention: { maxAgeMs: 0, maxBytes: budget } });
    cleanup.push(() => c.stop());
    await c.check();
    expect(locations(base.a)).toEqual(['remote', 'local', 'local', 'local']);
    expect(f0!.committedBytes).toBeGreaterThan(0);
    await c.stop();
    const dir = base.dir;
    await base.a.close();
    const again = await Archive.open(dir, { readonly: true });
    cleanup.push(() => again.close());
    expect(again.files.map((f) => [f.name, f.location])).toEqual([[f0!.name, 'remote'], [f1!.name, 'local'], [f2!.name, 'local'], ['current', 'local']]);
    expect(again.table(again.files[0]!).deltas.length).toBeGreaterThan(0);
  });

  it('never evicts a file whose put failed, and GET /api/v1/archive shows why', async () => {
    const s = await setup([T0], { retention: { maxAgeMs: 1, maxBytes: 1 }, policy: { put: { attempts: 1 } } }, {}, 'fail.sh');
    const retried = new Promise((done) => s.c.once('event', done));
    await s.c.check();
    expect(locations(s.a)).toEqual(['local', 'local']);
    expect(await retried).toMatchObject({ type: 'put', ok: false });
    const app = await buildServer({ archive: s.a, cold: s.c });
    cleanup.push(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/api/v1/archive' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.files[0]).toMatchObject({
      name: s.names[0], location: 'local', indexed: true,
      put: { status: 'failed', attempts: 2, error: expect.stringMatching(/fail\.sh exited with status 7: bucket tapedeck-cold does not exist/) },
    });
    expect(body.files[1]).toMatchObject({ name: 'current', put: null });
    expect(body.hooks).toMatchObject({ putsPending: 1, failures: { put: 2 }, runs: { put: { failed: 2, ok: 0 } }, evicted: 0, retention: { maxAgeMs: 1, maxBytes: 1 } });
  });
});
