import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { open, readdir } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { startServer } from './helpers/server.js';
import { request } from 'undici';
import { waitFor } from './helpers/until.js';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { tmpDir } from './helpers/tmp.js';
import { fabricBatches } from './helpers/workload.js';
import { tapedeckArgs } from './helpers/built.js';
import { tapedeck } from './helpers/cli.js';

async function fabricArchive(dir: string): Promise<void> {
  const a = await Archive.open(dir, { imageFrequencyBytes: 8192 });
  let i = 0;
  for (const b of fabricBatches(3, 8, 120)) {
    a.writer!.append(b.updates, b.ts);
    if (++i === 60) await a.writer!.rotate();
  }
  await a.close();
}

describe('tapedeck CLI', () => {
  it('inspect --json summarises files, paths and the state at a time', async () => {
    const dir = await tmpDir();
    await fabricArchive(dir);
    const r = await tapedeck('inspect', dir, '--json', '--at', '1763000030', '--glob', '/fabric/sw-001/*');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.files).toHaveLength(2);
    expect(j.batches).toBe(120);
    expect(j.updates).toBe(120 * 64);
    expect(j.paths).toBe(64);
    expect(Object.keys(j.stateAt.values)).toHaveLength(8);
    expect(j.problems).toEqual([]);
  });

  it('verify exits 0 on a clean archive and 1 naming file and offset of a corrupt block', async () => {
    const dir = await tmpDir();
    await fabricArchive(dir);
    expect((await tapedeck('verify', dir)).code).toBe(0);
    const a = await Archive.open(dir, { readonly: true });
    const f = a.files[0]!;
    const row = a.table(f).rows.filter((r) => r.type === 2)[0]!;
    await a.close();
    const fh = await open(join(dir, f.name), 'r+');
    await fh.write(Buffer.from([0xff, 0xff, 0xff]), 0, 3, row.offset + 50);
    await fh.close();
    const r = await tapedeck('verify', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`BAD ${f.name} at offset ${row.offset}: TPD_CORRUPT_BLOCK`);
    // The rest of the archive is still checked and reported.
    expect(r.stdout).toMatch(/current: \d+ blocks, 60 batches/);
  });

  it('reindex rebuilds the catalog; bad usage exits 2 with the usage text', async () => {
    const dir = await tmpDir();
    await fabricArchive(dir);
    const r = await tapedeck('reindex', dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2 file\(s\), \d+ blocks, 120 batches, 64 paths/);
    const bad = await tapedeck('frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('usage: tapedeck');
    const missing = await tapedeck('inspect', join(dir, 'nope'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('TPD_BAD_ARGUMENT');
  });
  it('--help, -h and no arguments print the usage with serve --port and --archive', async () => {
    for (const [args, code] of [[['--help'], 0], [['-h'], 0], [[], 2]] as const) {
      const r = await tapedeck(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stdout).toContain('usage: tapedeck <command>');
      expect(r.stdout).toContain('serve [--config FILE] [--port N] [--archive DIR]');
      expect(r.stdout).toContain('seeded');
    }
  });

  it('prints "tapedeck: CODE: message" without a stack trace for bad arguments, bad and dead URLs', async () => {
    // A port nothing listens on: taken from the system, then let go.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const srv = await startServer(Array.from(fabricBatches(3, 2, 5)));
    try {
      const cases: Array<[string[], RegExp]> = [
        [['serve', '--port', '99999'], /^tapedeck: TPD_BAD_ARGUMENT: --port takes a port number/],
        [['serve', '--port', '80a'], /^tapedeck: TPD_BAD_ARGUMENT: --port/],
        [['serve', '--config', '/nonexistent/tapedeck.json'], /^tapedeck: TPD_BAD_CONFIG: cannot read config/],
        [['play', 'not a url'], /^tapedeck: TPD_BAD_ARGUMENT: Failed to parse URL/],
        [['play', 'http://127.0.0.1:1/'], /^tapedeck: TPD_BAD_ARGUMENT: the URL's port is one fetch refuses/],
        [['play', `http://127.0.0.1:${deadPort}/`], new RegExp(`^tapedeck: TPD_NOT_READY: cannot reach the server: connect ECONNREFUSED 127.0.0.1:${deadPort}\n$`)],
        // A real server, the wrong prefix: its 404 keeps the server's code.
        [['play', `${srv.url}/not-tapedeck`], /^tapedeck: TPD_NOT_FOUND: /],
        [['play', srv.url, '--start', 'yesterday-ish'], /^tapedeck: TPD_BAD_CONTROL: |^tapedeck: TPD_BAD_ARGUMENT: /],
      ];
      for (const [args, want] of cases) {
        const r = await tapedeck(...args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr, args.join(' ')).toMatch(want);
        expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
      }
    } finally {
      await srv.close();
    }
  });

  it('serve seeds an empty archive directory on first start; --port and --archive override the default', async () => {
    const cwd = await tmpDir();
    for (const extra of [[], ['--archive', 'elsewhere']]) {
      const dir = join(cwd, extra.length > 0 ? 'elsewhere' : 'data');
      const child = spawn(process.execPath, tapedeckArgs('serve', '--port', '0', ...extra), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const url = await waitFor(async () => /web player at (http:\/\/[^\s"]+)\//.exec(out)?.[1], 60_000, `serve to listen (output so far: ${out})`);
        expect(url).not.toMatch(/:8080$/);
        expect(out).toContain('seeded');
        expect((await readdir(dir)).length).toBeGreaterThan(0);
        // The seeded past: five minutes ago the simulated fabric was there already.
        const res = await request(`${url}/api/v1/state?at=-5m&glob=/fabric/sw-000/*`);
        const body = (await res.body.json()) as { values: Record<string, unknown> };
        expect(Object.keys(body.values).length).toBe(8);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    }
  });
});
