/**
 * No PromQL query text can hold the event loop: the upstream grammar's error recovery costs
 * ~16 µs a character of garbage, so a query of promqlQueryCharsMax took a second or two in
 * one piece and a few at once held the server; it is parsed in slices now, in queries and
 * in match[] alike, so /health answers while garbage is refused with bad_data.
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
import { SERVER_LIMITS } from '../server/limits.js';

/** /health must answer at all within this while a query runs (not a timing target). */
const HEALTH_ANSWER_MS = 5_000;
/** Series of the archive, each with an `instance` of VALUE_CHARS characters. */
const SERIES = 10;
const VALUE_CHARS = 400;

const ROOT = new URL('..', import.meta.url).pathname;

/** A server over an archive of SERIES series with long label values, in a child process; prints its URL. */
const CHILD = `
const { Archive } = await import(${JSON.stringify(join(ROOT, 'storage/index.ts'))});
const { buildServer } = await import(${JSON.stringify(join(ROOT, 'server/app.ts'))});
const { seriesToPath } = await import(${JSON.stringify(join(ROOT, 'protocol/prom-path.ts'))});
const archive = await Archive.open(process.argv[1], { flushIntervalMs: 0 });
const updates = [];
for (let i = 0; i < ${SERIES}; i++) updates.push([seriesToPath({ name: 'ifInOctets', labels: { instance: 'a'.repeat(${VALUE_CHARS} - String(i).length) + i } }), i]);
archive.writer.append(updates, Date.now() * 1000 - 60_000_000);
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

async function healthAnswers(): Promise<boolean> {
  try {
    return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) })).status === 200;
  } catch {
    return false;
  }
}

function post(route: string, form: Record<string, string>): Promise<Response> {
  return fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
}


describe('query text', () => {
  const garbage = ['"', '{', '1s'].map((unit) => unit.repeat(Math.floor(SERVER_LIMITS.promqlQueryCharsMax / unit.length) - 1));
  it('parses garbage of promqlQueryCharsMax in slices: 6 at once, as a query and as match[], are refused with bad_data, and /health answers meanwhile', async () => {
    const answers = garbage.flatMap((text) => [post('/api/v1/query', { query: text }), post('/api/v1/series', { 'match[]': text })]);
    await new Promise((r) => setTimeout(r, 100));
    expect(await healthAnswers()).toBe(true);
    for (const res of await Promise.all(answers)) {
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errorType: string }).errorType).toBe('bad_data');
    }
  }, 60_000);
});
