/**
 * A playback session with a costly filter cannot hold the event loop: its cursor's filter is
 * decided for every recorded path in slices (at creation, and for the column cursor of
 * unlimited play), not in one piece by the first state frame its stream asks for, so
 * /health answers while several such sessions are made and their streams open, and each
 * stream's state holds exactly the paths the filter selects.
 *
 * The server runs in a child process (the sources through tsx): a server whose event loop is
 * held would hold this test's loop too, and its /health probes with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fabricFill, startArchiveServer, type ChildServer } from './helpers/child-server.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import { api, TestWs } from './helpers/server.js';

const HEALTH_ANSWER_MS = 5_000;
/** Recorded paths: a query's worth of costly globs takes a second or more over them in one piece. */
const PATHS = 250_000;
const FIRST_US = 1_700_000_000_000_000;


let server: ChildServer;
let url: string;

beforeAll(async () => {
  server = await startArchiveServer(fabricFill(PATHS, FIRST_US));
  url = server.url;
}, 60_000);

afterAll(() => server?.close());

const FIRST_PATH = '/fabric/sw-0/if-0/octets_in_counter_value';
/** Sessions made (and streams opened) at once. */
const SESSIONS = 6;

/**
 * globsPerSpecMax globs: all but one scan every segment of every path for their pieces and
 * match none; the last selects the first path recorded, so the creation's no-match check
 * stops at once and the cost is all in deciding the filter for every other path.
 */
function costlyFilter(n: number): string[] {
  return [...Array.from({ length: PROTOCOL_LIMITS.globsPerSpecMax - 1 }, (_, k) => `/**/*e*e*${n}x${k}z`), FIRST_PATH];
}

async function healthAnswers(): Promise<boolean> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) }).catch(() => undefined);
  return res?.status === 200;
}

describe('sessions with costly filters', () => {
  it('decide the filter in slices: /health answers while they are made and their streams open; the state holds the selected path', async () => {
    const made = Array.from({ length: SESSIONS }, (_, n) => api(url, 'POST', '/api/v1/sessions', { state: 'pause', pos: 'end', filter: costlyFilter(n) }));
    await new Promise((r) => setTimeout(r, 100));
    expect(await healthAnswers()).toBe(true);
    const ids = (await Promise.all(made)).map((r) => {
      expect(r.status).toBe(201);
      expect(r.body.warning).toBeUndefined();
      return r.body.id as string;
    });
    const streams = await Promise.all(ids.map((id) => TestWs.open(`${url}/api/v1/sessions/${id}/stream`)));
    await new Promise((r) => setTimeout(r, 100));
    expect(await healthAnswers()).toBe(true);
    for (const ws of streams) {
      const state = await ws.next((f) => f.type === 'state', 30_000);
      expect(state.values).toEqual({ [FIRST_PATH]: 0 });
      ws.close();
    }
  }, 60_000);
});
