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
import { fabricFill, startArchiveServer, type ChildServer } from './helpers/child-server.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';

const HEALTH_ANSWER_MS = 5_000;
/** Recorded paths: 256 costly globs take a second or more over them in one piece. */
const PATHS = 250_000;


let server: ChildServer;
let url: string;

beforeAll(async () => {
  server = await startArchiveServer(fabricFill(PATHS, 1_700_000_000_000_000));
  url = server.url;
}, 60_000);

afterAll(() => server?.close());

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
