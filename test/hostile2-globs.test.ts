/**
 * Costly globs cannot hold the event loop through /api/v1/state (latest values from the
 * recorder's memory, and as of a time from the archive) or /api/v1/diff: each matches the
 * recorded paths in slices of specPathsPerYield, so /health answers while several such
 * requests run, and each still answers in full (empty, with TPD_NO_MATCH).
 *
 * The server runs in a child process (the sources through tsx): a server whose event loop is
 * held would hold this test's loop too, and its /health probes with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fabricFill, startArchiveServer, type ChildServer } from './helpers/child-server.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';

const HEALTH_ANSWER_MS = 5_000;
/** Recorded paths: a query's worth of costly globs takes a second or more over them in one piece. */
const PATHS = 250_000;
const FIRST_US = 1_700_000_000_000_000;


let server: ChildServer;
let url: string;

beforeAll(async () => {
  server = await startArchiveServer(fabricFill(PATHS, FIRST_US), { recorder: true });
  url = server.url;
}, 60_000);

afterAll(() => server?.close());

/** globsPerSpecMax globs that scan every segment of every path for their pieces and match none; `n` makes each list its own (no cache shared). */
function costlyGlobs(n: number): string {
  return Array.from({ length: PROTOCOL_LIMITS.globsPerSpecMax }, (_, k) => `glob=${encodeURIComponent(`/**/*e*e*${n}x${k}z`)}`).join('&');
}

describe('costly globs in state and diff queries', () => {
  it('match in slices: latest and as-of state and diff answer empty with TPD_NO_MATCH, and /health answers meanwhile', async () => {
    const at = encodeURIComponent(new Date((FIRST_US + 10_000_000) / 1000).toISOString());
    const asked = Array.from({ length: 2 }, (_, n) => [
      fetch(`${url}/api/v1/state?${costlyGlobs(3 * n)}`),
      fetch(`${url}/api/v1/state?at=${at}&${costlyGlobs(3 * n + 1)}`),
      fetch(`${url}/api/v1/diff?start=${at}&${costlyGlobs(3 * n + 2)}`),
    ]).flat();
    await new Promise((r) => setTimeout(r, 100));
    const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) }).catch(() => undefined);
    expect(health?.status).toBe(200);
    for (const res of await Promise.all(asked)) {
      expect(res.status).toBe(200);
      const body = (await res.json()) as { values?: object; paths?: unknown[]; appeared?: unknown[]; warning?: { code: string } };
      expect(body.warning?.code).toBe('TPD_NO_MATCH');
      if (body.values) expect(Object.keys(body.values)).toEqual([]);
      else expect([body.paths, body.appeared]).toEqual([[], []]);
    }
  }, 60_000);

  it('still answers the matching paths of a glob list, latest and as of a time', async () => {
    const glob = `glob=${encodeURIComponent('/fabric/sw-3/if-17*/**')}`;
    const latest = (await (await fetch(`${url}/api/v1/state?${glob}`)).json()) as { values: Record<string, unknown>; warning?: unknown };
    const expected = ['/fabric/sw-3/if-17', ...Array.from({ length: 10 }, (_, d) => `/fabric/sw-3/if-17${d}`), ...Array.from({ length: 100 }, (_, d) => `/fabric/sw-3/if-17${String(d).padStart(2, '0')}`)]
      .filter((p) => Number(p.slice('/fabric/sw-3/if-'.length)) < PATHS / 25)
      .map((p) => `${p}/octets_in_counter_value`);
    expect(Object.keys(latest.values).sort()).toEqual(expected.sort());
    expect(latest.values['/fabric/sw-3/if-17/octets_in_counter_value']).toBe(17);
    expect(latest.warning).toBeUndefined();
    const at = encodeURIComponent(new Date((FIRST_US + 3_000_000) / 1000).toISOString());
    const asOf = (await (await fetch(`${url}/api/v1/state?at=${at}&${glob}`)).json()) as { values: Record<string, unknown>; warning?: unknown };
    expect(asOf.values).toEqual(latest.values);
    expect(asOf.warning).toBeUndefined();
  }, 30_000);
});
