import { describe, expect, it, onTestFinished } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { coverageOf, type CoverageEvent } from '../protocol/coverage.js';
import { COVERAGE_FILE, decodeJournal, encodeJournalLine } from '../storage/coverage-journal.js';
import { readArchive } from './helpers/replay.js';
import { upstream } from './helpers/upstreams.js';
import { tmpDir } from './helpers/tmp.js';
import { waitFor } from './helpers/until.js';
import { tapedeckArgs } from './helpers/built.js';


describe('coverage events', () => {
  const ev = (e: CoverageEvent): CoverageEvent => e;
  it('derives runs, a crash gap, a stop gap and outages closed by the run end', () => {
    const c = coverageOf([
      ev({ kind: 'run-start', run: 'a', atUs: 100, lastTsUs: null }),
      ev({ kind: 'run-first-batch', run: 'a', atUs: 101, tsUs: 101 }),
      ev({ kind: 'source-down', run: 'a', atUs: 150, source: 's', reason: 'HTTP 500' }),
      ev({ kind: 'source-up', run: 'a', atUs: 160, source: 's' }),
      ev({ kind: 'source-down', run: 'a', atUs: 170, source: 's', reason: 'timeout' }),
      // crash: no stop; the next run found the archive ending at 180
      ev({ kind: 'run-start', run: 'b', atUs: 300, lastTsUs: 180 }),
      ev({ kind: 'run-first-batch', run: 'b', atUs: 301, tsUs: 305 }),
      ev({ kind: 'run-stop', run: 'b', atUs: 400, lastTsUs: 390 }),
      ev({ kind: 'run-start', run: 'c', atUs: 500, lastTsUs: 390 }),
    ]);
    expect(c.runs.map((r) => [r.run, r.ended, r.firstTsUs, r.lastTsUs])).toEqual([
      ['a', 'crashed', 101, 180], ['b', 'stopped', 305, 390], ['c', 'running', null, null],
    ]);
    expect(c.gaps).toEqual([
      { startUs: 180, endUs: 305, reason: 'recorder-crashed' },
      { startUs: 390, endUs: null, reason: 'recorder-stopped' },
    ]);
    expect(c.outages).toEqual([
      { source: 's', startUs: 150, endUs: 160, reason: 'HTTP 500' },
      { source: 's', startUs: 170, endUs: 300, reason: 'timeout' },
    ]);
  });

  it('skips and reports damaged journal lines, ignores a torn last line, never believes a bad checksum', () => {
    const good = encodeJournalLine({ kind: 'run-start', run: 'a', atUs: 1, lastTsUs: null });
    const other = encodeJournalLine({ kind: 'run-stop', run: 'a', atUs: 2, lastTsUs: 7 });
    // The same line with one digit of the value changed: its checksum no longer holds.
    const altered = other.replace('"lastTsUs":7', '"lastTsUs":8');
    const wrongShape = encodeJournalLine({ kind: 'run-stop', run: 'a', atUs: -5, lastTsUs: 7 } as CoverageEvent);
    const j = decodeJournal(good + altered + 'garbage\n' + wrongShape + good.slice(0, 20));
    expect(j.events).toEqual([{ kind: 'run-start', run: 'a', atUs: 1, lastTsUs: null }]);
    expect(j.problems.map((p) => [p.line, p.message])).toEqual([[2, 'checksum mismatch'], [3, 'not a journal line'], [4, 'not a coverage event']]);
    expect(j.torn).toBe(true);
    // Every single-byte change of a line is caught (or leaves the line's meaning intact).
    for (let i = 0; i < other.length - 1; i++) {
      const bytes = Buffer.from(other);
      bytes[i] = (bytes[i] as number) ^ 0x04;
      const d = decodeJournal(bytes.toString('latin1'));
      expect(d.events.length === 0 || JSON.stringify(d.events[0]) === JSON.stringify({ kind: 'run-stop', run: 'a', atUs: 2, lastTsUs: 7 })).toBe(true);
    }
  });
});

interface Child {
  proc: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

async function serve(cfg: string): Promise<Child> {
  const proc = spawn(process.execPath, tapedeckArgs('serve', '--config', cfg), { stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', () => reject(new Error('server exited before listening')));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      const j = JSON.parse(l) as Record<string, unknown>;
      if (j.msg === 'listening') resolve(j.url as string);
    });
  });
  return { proc, url, exited };
}

async function push(url: string, value: number): Promise<void> {
  const res = await request(`${url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ updates: { '/push/v': value } }) });
  expect(res.statusCode).toBe(200);
  await res.body.dump();
}

interface CoverageBody {
  horizon_us: number | null;
  runs: Array<{ ended: string; first_us: number | null; last_us: number | null }>;
  gaps: Array<{ start_us: number; end_us: number | null; reason: string }>;
  outages: Array<{ source: string; start_us: number; end_us: number | null; reason: string }>;
}

async function coverage(url: string): Promise<CoverageBody> {
  const res = await request(`${url}/api/v1/coverage`);
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as CoverageBody;
}

describe('GET /api/v1/coverage', () => {
  it('records a source outage, a crash gap ending at the first batch after the restart, and a clean-stop gap', async () => {
    // The upstream fails requests 3 to 5: one outage of the source.
    const up = await upstream((n) => (n >= 3 && n < 6 ? { status: 500, body: 'down' } : { headers: { etag: `"${n}"` }, body: `id,v\nsw,${n}\n` }));
    onTestFinished(() => up.close());
    const dir = await tmpDir();
    const archive = join(dir, 'archive');
    const cfg = join(dir, 'cfg.json');
    await writeFile(cfg, JSON.stringify({
      archive_directory: archive,
      record: { spec: ['/**'], flush_interval: '20ms' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: 'up', type: 'csv-matrix', url: up.url, interval: '10ms', timeout: '5s' }, { name: 'push', type: 'push' }],
    }));

    let srv = await serve(cfg);
    await push(srv.url, 1);
    const first = await waitFor(async () => {
      const c = await coverage(srv.url);
      return c.outages.length === 1 && c.outages[0]?.end_us !== null ? c : undefined;
    }, 30_000, 'the outage to end');
    expect(first.outages[0]).toMatchObject({ source: 'up', reason: expect.stringContaining('500') });
    expect(first.runs).toHaveLength(1);
    expect(first.gaps).toEqual([]);
    // Wait until something is committed, then kill -9: the run never says it stopped.
    await waitFor(async () => ((await coverage(srv.url)).horizon_us ?? 0) > 0 || undefined, 10_000, 'a commit');
    srv.proc.kill('SIGKILL');
    await srv.exited;

    srv = await serve(cfg);
    await push(srv.url, 2);
    const second = await waitFor(async () => {
      const c = await coverage(srv.url);
      return c.gaps.length === 1 && c.gaps[0]?.end_us !== null ? c : undefined;
    }, 10_000, 'the crash gap to close');
    expect(second.gaps[0]?.reason).toBe('recorder-crashed');
    expect(second.runs.map((r) => r.ended)).toEqual(['crashed', 'running']);
    srv.proc.kill('SIGTERM');
    expect(await srv.exited).toBe(0);

    srv = await serve(cfg);
    await push(srv.url, 3);
    const third = await waitFor(async () => {
      const c = await coverage(srv.url);
      return c.gaps.length === 2 && c.gaps[1]?.end_us !== null ? c : undefined;
    }, 10_000, 'the stop gap to close');
    expect(third.gaps.map((g) => g.reason)).toEqual(['recorder-crashed', 'recorder-stopped']);
    expect(third.runs.map((r) => r.ended)).toEqual(['crashed', 'stopped', 'running']);
    srv.proc.kill('SIGTERM');
    expect(await srv.exited).toBe(0);

    // Each gap runs from a batch to the very next batch in the archive: nothing is inside it.
    const ts = (await readArchive(archive)).map((b) => b.ts);
    for (const g of third.gaps) {
      const i = ts.indexOf(g.start_us);
      expect(i, `gap start ${g.start_us} is a recorded batch`).toBeGreaterThanOrEqual(0);
      expect(ts[i + 1]).toBe(g.end_us);
    }

    // A damaged journal line is skipped and reported, and the server still starts.
    const journal = join(archive, COVERAGE_FILE);
    const text = await readFile(journal, 'utf8');
    await writeFile(journal, text.replace('"run-stop"', '"run-stoq"'));
    await appendFile(journal, '0000');
    srv = await serve(cfg);
    const after = await coverage(srv.url);
    // The second run's stop is gone, so it now reads as crashed; the rest holds.
    expect(after.runs.map((r) => r.ended)).toEqual(['crashed', 'crashed', 'stopped', 'running']);
    srv.proc.kill('SIGTERM');
    expect(await srv.exited).toBe(0);
  });
});
