/**
 * A real server over an archive damaged in each kind of file it writes: a byte flipped in a
 * rotated file's block and in `current`'s, in a per-series sidecar, in the workspace, in the
 * coverage journal, a catalog page zeroed, and all of them at once. Each time the server
 * starts, /health and the other routes answer, every state it answers is the undamaged
 * server's (else a TPD_ error, never TPD_INTERNAL), bookmarks are the recorded ones or none
 * (the damaged file moved aside), recording goes on, and `verify` reports the damage.
 *
 * DAMAGE3_SERVER_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { cp, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { verifyArchive } from '../storage/verify.js';
import { BlockType } from '../storage/codec/frame.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { scanBlocks } from '../storage/segment-file.js';
import { xorByte, zeroBytes } from './helpers/damage.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { randomBatches, rng } from './helpers/workload.js';

function config(dir: string, extra: Record<string, unknown> = {}): ReturnType<typeof resolveConfig> {
  return resolveConfig({ archive_directory: dir, record: { flush_interval: '0', ...extra }, publish: { bind: '127.0.0.1:0' }, sources: [] });
}

async function deltaOffset(file: string, r: () => number): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
    const deltas = blocks.filter((b) => b.type === BlockType.DELTA);
    const b = deltas[Math.floor(r() * deltas.length)]!;
    return b.offset + 48 + Math.floor(r() * (b.frameBytes - 48));
  } finally {
    await fh.close();
  }
}

describe('a server over damaged files of every kind', () => {
  it('starts, answers what was recorded or a TPD_ error, records on; verify reports the damage', async () => {
    const seed = scheduleSeed('DAMAGE3_SERVER_SEED', 'damage3 server');
    const r = rng(seed);
    const root = await tmpDir('tapedeck-damage3-server-');
    const base = join(root, 'base');
    const batches = randomBatches(seed, 5000, { paths: 40, maxUpdates: 8 });
    {
      const s = await startServer(config(base, { rotate_size: 65536 }), { logger: pino({ level: 'silent' }) });
      let i = 0;
      for (const b of batches) {
        s.archive.writer!.append(b.updates, b.ts);
        if (++i % 100 === 0) await s.archive.writer!.flush();
      }
      await s.archive.writer!.flush();
      for (let k = 0; k < 3; k++) await fetch(`${s.url}/api/v1/bookmarks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ts: batches[k * 100]!.ts, note: `note ${k}` }) });
      await seriesIndexOf(s.archive).whenIdle();
      await s.close();
    }
    if (process.env.DAMAGE3_SHOW) console.log(`${Date.now() % 1e6} recorded`);
    const rotated = (await readdir(base)).filter((n) => /^\d{4}-/.test(n)).sort();
    expect(rotated.length).toBeGreaterThanOrEqual(2);
    const sidecars = (await readdir(join(base, 'series-index')).catch(() => [] as string[])).filter((n) => n.endsWith('.sidx'));
    const times = Array.from({ length: 8 }, () => batches[Math.floor(r() * batches.length)]!.ts + Math.floor(r() * 3000));

    const answers = async (url: string): Promise<{ states: string[]; bookmarks: string }> => {
      const states: string[] = [];
      for (const t of times) {
        const res = await fetch(`${url}/api/v1/state?at=${t}`);
        const body = await res.text();
        if (res.status === 200) states.push(body);
        else {
          expect(body, `state at ${t}: ${res.status}`).toMatch(/"code":"TPD_[A-Z_]+"/);
          expect(body).not.toMatch(/TPD_INTERNAL/);
          states.push(`error ${res.status}`);
        }
      }
      const b = await fetch(`${url}/api/v1/bookmarks`);
      expect(b.status).toBe(200);
      return { states, bookmarks: await b.text() };
    };
    let want: { states: string[]; bookmarks: string };
    {
      const dir = join(root, 'pristine');
      await cp(base, dir, { recursive: true });
      const s = await startServer(config(dir), { logger: pino({ level: 'silent' }) });
      try {
        want = await answers(s.url);
      } finally {
        await s.close();
      }
      expect(want.states.every((x) => !x.startsWith('error'))).toBe(true);
      expect((await verifyArchive(dir)).problems).toEqual([]);
    }

    const damages: Array<[string, (dir: string) => Promise<void>]> = [
      ['a rotated file\'s block', async (dir) => xorByte(join(dir, rotated[0]!), await deltaOffset(join(dir, rotated[0]!), r), 1 + Math.floor(r() * 255))],
      ['current\'s block', async (dir) => xorByte(join(dir, 'current'), await deltaOffset(join(dir, 'current'), r), 1 + Math.floor(r() * 255))],
      ['the workspace', async (dir) => xorByte(join(dir, 'workspace.json'), Math.floor(r() * 200), 1 + Math.floor(r() * 255))],
      ['the coverage journal', async (dir) => xorByte(join(dir, 'coverage.log'), Math.floor(r() * 20), 1 + Math.floor(r() * 255))],
      ['a catalog page', async (dir) => void (await zeroBytes(join(dir, 'catalog.sqlite'), 4096, 4096))],
    ];
    if (sidecars.length > 0) damages.push(['a sidecar', async (dir) => xorByte(join(dir, 'series-index', sidecars[0]!), 100 + Math.floor(r() * 100), 1 + Math.floor(r() * 255))]);
    const each = damages.slice();
    damages.push(['all of them', async (dir) => {
      for (const [, d] of each) await d(dir);
    }]);

    let n = 0;
    for (const [what, damage] of damages) {
      const where = `${what} (seed ${seed})`;
      if (process.env.DAMAGE3_SHOW) console.log(`${Date.now() % 1e6} ${where}`);
      const dir = join(root, `t${n++}`);
      await cp(base, dir, { recursive: true });
      await damage(dir);
      const report = await verifyArchive(dir);
      expect(report.ok, `${where}: verify`).toBe(false);
      expect(report.problems.map((p) => p.code).join(), where).not.toMatch(/TPD_INTERNAL/);
      const s = await startServer(config(dir), { logger: pino({ level: 'silent' }) }).catch((err: unknown) => {
        throw new Error(`${where}: the server did not start: ${String(err)}`, { cause: err });
      });
      try {
        const got = await answers(s.url);
        got.states.forEach((x, i) => {
          if (!x.startsWith('error')) expect(x, `${where}: state at ${times[i]}`).toBe(want.states[i]);
        });
        expect([want.bookmarks, '{"bookmarks":[]}'], `${where}: bookmarks`).toContain(got.bookmarks);
        if (!/workspace|all/.test(what)) expect(got.bookmarks, where).toBe(want.bookmarks);
        expect((await fetch(`${s.url}/health`)).status, where).toBe(200);
        expect((await fetch(`${s.url}/api/v1/archive`)).status, where).toBe(200);
        const ts = s.archive.writer!.append([['/after/damage', n]]);
        await s.archive.writer!.flush();
        expect(s.archive.lastTs, `${where}: recording goes on`).toBe(ts);
      } finally {
        await s.close();
      }
    }
  });
});
