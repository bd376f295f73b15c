/**
 * A spec of many costly globs cannot hold the event loop while a request matches it against
 * every recorded path (a session's filter checked for a match, /api/v1/paths): the paths go
 * in slices of specPathsPerYield, so /health answers while several such requests run, and
 * each still answers in full (TPD_NO_MATCH when nothing matches).
 *
 * The server runs in a child process (the sources through tsx): a server whose event loop is
 * held would hold this test's loop too, and its /health probes with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';

const HEALTH_ANSWER_MS = 5_000;
/** Recorded paths: 256 costly globs take a second or more over them in one piece. */
const PATHS = 250_000;
const ROOT = new URL('..', import.meta.url).pathname;

const CHILD = `
const { Archive } = await import(${JSON.stringify(join(ROOT, 'storage/index.ts'))});
const { buildServer } = await import(${JSON.stringify(join(ROOT, 'server/app.ts'))});
const archive = await Archive.open(process.argv[1], { flushIntervalMs: 0 });
for (let b = 0; b < 25; b++) {
  const updates = [];
  for (let i = 0; i < ${PATHS} / 25; i++) updates.push(['/fabric/sw-' + b + '/if-' + i + '/octets_in_counter_value', i]);
  archive.writer.append(updates, 1_700_000_000_000_000 + b * 1_000_000);
}
await archive.writer.flush();
const app = await buildServer({ archive });
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ url: 'http://127.0.0.1:' + app.server.address().port }));
`;

let dir: string;
let child: ChildProcessWithoutNullStreams;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tapedeck-hostile-'));
  child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, join(dir, 'archive')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited (${String(code)}) before listening: ${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (l) => resolve((JSON.parse(l) as { url: string }).url));
  });
}, 60_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('costly specs', () => {
  it('matches them against every path in slices: sessions and /api/v1/paths answer TPD_NO_MATCH, and /health answers meanwhile', async () => {
    // Each glob scans every segment of every path for its pieces, and matches none.
    const globs = Array.from({ length: PROTOCOL_LIMITS.globsPerSpecMax }, (_, k) => `/**/${'*e'.repeat(60)}*${k}z`);
    const sessions = Array.from({ length: 4 }, () =>
      fetch(`${url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'pause', filter: globs }) }),
    );
    const listed = fetch(`${url}/api/v1/paths?${globs.slice(0, 64).map((g) => `glob=${encodeURIComponent(g)}`).join('&')}`);
    await new Promise((r) => setTimeout(r, 100));
    const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) }).catch(() => undefined);
    expect(health?.status).toBe(200);
    for (const res of await Promise.all(sessions)) {
      expect(res.status).toBe(201);
      expect(((await res.json()) as { warning?: { code: string } }).warning?.code).toBe('TPD_NO_MATCH');
    }
    const paths = (await (await listed).json()) as { count: number; warning?: { code: string } };
    expect(paths.count).toBe(0);
    expect(paths.warning?.code).toBe('TPD_NO_MATCH');
  }, 60_000);
});
