import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/main.js';
import { Archive } from '../storage/archive.js';
import type { ColdEvent } from '../storage/cold.js';
import { tmpDir } from './helpers/tmp.js';

const FIX = resolve('test/fixtures/hooks');
const T0 = 1_700_000_000_000_000;
let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(dir: string, cmds: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<RunningServer> {
  const config = resolveConfig({
    archive_directory: dir,
    archive_cmds: cmds,
    archive_hooks: { attempts: 1, list_interval: null },
    retention: { max_bytes: 1, check_interval: '1h' },
    record: { flush_interval: '0' },
    publish: { bind: '127.0.0.1:0' },
    sources: [],
    ...extra,
  });
  server = await startServer(config, { logger: pino({ level: 'silent' }) });
  return server;
}

describe('tapedeck serve with archive hooks', () => {
  it('ships, evicts and fetches back through the configured hooks; history reads the remote file', async () => {
    const base = await tmpDir('tapedeck-serve-cold-');
    const cold = join(base, 'cold');
    await mkdir(cold);
    const s = await serve(join(base, 'archive'), {
      put: [join(FIX, 'put-copy.sh'), [cold]],
      list: [join(FIX, 'list-dir.sh'), [cold]],
      get: [join(FIX, 'get-copy.sh'), [cold]],
    });
    const c = s.cold!;
    for (let i = 0; i < 20; i++) s.archive.writer!.append([['/lab/temp', 20 + i / 2]], T0 + i * 1_000_000);
    const shipped = new Promise<ColdEvent>((done) => c.once('event', done));
    await s.archive.writer!.rotate();
    expect(await shipped).toMatchObject({ type: 'put', ok: true });
    await c.check();
    const arch = (await (await fetch(`${s.url}/api/v1/archive`)).json()) as { files: unknown[]; hooks: unknown };
    expect(arch.files[0]).toMatchObject({ location: 'remote', put: { status: 'done' } });
    expect(arch.hooks).toMatchObject({ evicted: 1, runs: { put: { ok: 1 }, list: { ok: 1 } } });

    const from = new Date(T0 / 1000).toISOString();
    const res = await fetch(`${s.url}/api/v1/history?glob=/lab/temp&from=${from}&format=ndjson`);
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split('\n');
    expect(lines).toHaveLength(20);
    expect(JSON.parse(lines[19] as string)).toMatchObject({ updates: { '/lab/temp': 29.5 } });
    expect((await readFile(join(base, 'calls.log'), 'utf8')).split('\n').filter((l) => l.startsWith('get'))).toHaveLength(1);
    // The metrics read the cold storage the server started (passed in, not looked up).
    const metrics = (await (await fetch(`${s.url}/metrics`)).text()).split('\n');
    for (const series of ['tapedeck_hook_runs_total{hook="put",result="ok"} 1', 'tapedeck_hook_runs_total{hook="get",result="ok"} 1', 'tapedeck_files_evicted_total 1', 'tapedeck_files_fetched_total 1', 'tapedeck_puts_pending 0']) {
      expect(metrics).toContain(series);
    }
  });

  it('kills a running put at shutdown; the file stays local and pending for the next start', async () => {
    const base = await tmpDir('tapedeck-serve-cold-');
    const dir = join(base, 'archive');
    const s = await serve(dir, { put: [join(FIX, 'hang.sh'), [join(base, 'pid')]] }, { archive_hooks: { attempts: 1, timeout: '1h' } });
    s.archive.writer!.append([['/x', 1]], T0);
    await s.archive.writer!.rotate();
    const name = s.archive.files[0]!.name;
    expect(s.cold!.stats.putQueue).toBe(1);
    const started = Date.now();
    await s.close();
    server = undefined;
    expect(Date.now() - started).toBeLessThan(10_000);
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    try {
      expect(a.files[0]).toMatchObject({ name, location: 'local' });
      expect(a.catalog.puts()).toMatchObject([{ name, status: 'pending', error: expect.stringMatching(/killed by SIGKILL/) }]);
    } finally {
      await a.close();
    }
  });
});
