/**
 * A directory where the server expects a file (or a file where it expects its sidecar
 * directory): each segment file, the catalog and its WAL, the coverage journal, the workspace.
 * The server starts and answers, names what it cannot read as a problem, records on, and
 * `verify` reports an unreadable segment file instead of failing.
 */
import { describe, expect, it } from 'vitest';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import { verifyArchive } from '../storage/verify.js';
import { randomBatches } from './helpers/workload.js';
import { tmpDir } from './helpers/tmp.js';

function config(dir: string, extra: Record<string, unknown> = {}): ReturnType<typeof resolveConfig> {
  return resolveConfig({ archive_directory: dir, record: { flush_interval: '0', ...extra }, publish: { bind: '127.0.0.1:0' }, sources: [] });
}

describe('a directory in place of a file', () => {
  it('the server starts, reports it, answers and records; verify reports it', async () => {
    const root = await tmpDir('tapedeck-not-a-file-');
    const base = join(root, 'base');
    const batches = randomBatches(11, 2500, { paths: 40, maxUpdates: 8 });
    {
      const s = await startServer(config(base, { rotate_size: 65536 }), { logger: pino({ level: 'silent' }) });
      let i = 0;
      for (const b of batches) {
        s.archive.writer!.append(b.updates, b.ts);
        if (++i % 100 === 0) await s.archive.writer!.flush();
      }
      await fetch(`${s.url}/api/v1/bookmarks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ts: batches[5]!.ts, note: 'n' }) });
      await s.close();
    }
    const rotated = (await readdir(base)).filter((n) => /^\d{4}-/.test(n)).sort();
    expect(rotated.length).toBeGreaterThanOrEqual(1);
    const cases: Array<[string, RegExp | undefined]> = [
      ['current', /^current TPD_FILE_UNAVAILABLE/m],
      [rotated[0]!, new RegExp(`^${rotated[0]!.replace(/\./g, '\\.')} TPD_FILE_UNAVAILABLE`, 'm')],
      ['catalog.sqlite', /^catalog\.sqlite TPD_CORRUPT_CATALOG/m],
      ['catalog.sqlite-wal', undefined],
      ['coverage.log', /^coverage\.log TPD_CORRUPT_BLOCK/m],
      ['workspace.json', undefined],
      ['series-index', undefined],
    ];
    let n = 0;
    for (const [name, problem] of cases) {
      const dir = join(root, `t${n++}`);
      await cp(base, dir, { recursive: true });
      await rm(join(dir, name), { recursive: true, force: true });
      if (name === 'series-index') await writeFile(join(dir, name), 'not a directory');
      else await mkdir(join(dir, name));
      if (/^current$|^\d{4}-/.test(name)) {
        const report = await verifyArchive(dir);
        expect(report.problems.map((p) => `${p.file} ${p.code}`).join('\n'), `${name}: verify`).toMatch(problem!);
      }
      const s = await startServer(config(dir), { logger: pino({ level: 'silent' }) }).catch((err: unknown) => {
        throw new Error(`${name} is a directory: the server did not start: ${String(err)}`, { cause: err });
      });
      try {
        if (problem) expect(s.archive.problems.map((p) => `${p.file} ${p.code}`).join('\n'), `${name}: problems`).toMatch(problem);
        expect((await fetch(`${s.url}/health`)).status, name).toBe(200);
        expect((await fetch(`${s.url}/api/v1/bookmarks`)).status, name).toBe(200);
        expect((await fetch(`${s.url}/api/v1/archive`)).status, name).toBe(200);
        const ts = s.archive.writer!.append([['/after', n]]);
        await s.archive.writer!.flush();
        expect(s.archive.lastTs, `${name}: recording goes on`).toBe(ts);
      } finally {
        await s.close();
      }
    }
  });
});
