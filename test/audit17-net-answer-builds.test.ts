/**
 * Many large JSON answers asked at once cannot hold the server. /api/v1/state (as of a time,
 * or the latest when not cached), /api/v1/diff and /api/v1/paths build their answer whole: a
 * state of every matching path and its JSON text, parts of it in one piece. Before, any
 * number were built at once: a hundred as-of states of 50 000 paths from one client held
 * 1.5 GB of the server's memory and /health waited 14 s behind their pieces (a hundred diffs:
 * /health did not answer within 20 s; a hundred lists of those paths: 5 s). Now
 * jsonAnswersBuiltMax are built at a time (server/routes/answer-gate.ts), the others wait
 * their turn, and past jsonAnswersWaitingMax waiting a request is refused 503 TPD_BUSY with a
 * Retry-After; each answer that is built is whole.
 *
 * The server runs in a child process (the sources through tsx): a server whose event loop is
 * held would hold this test's loop too, and its /health probes with it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startArchiveServer, type ChildServer } from './helpers/child-server.js';

const PATHS = 50_000;
const T0 = 1_700_000_000_000_000;
/** As-of states and diffs (in turn) sent at once, and lists of paths beside them. */
const AT_ONCE = 100;
const LISTS_AT_ONCE = 10;
/**
 * /health must answer within this while they run: a bound for a stall, not a speed (it did
 * not answer within 20 s before; on a machine at load 12 one answer took over 4 s after).
 */
const HEALTH_WITHIN_MS = 8_000;

let server: ChildServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A server over PATHS paths in 4 batches; `waitingMax` overrides jsonAnswersWaitingMax. */
function start(waitingMax?: number): Promise<ChildServer> {
  const fill = [
    waitingMax === undefined ? '' : `SERVER_LIMITS.jsonAnswersWaitingMax = ${waitingMax};`,
    `for (let b = 0; b < 4; b++) {
      const updates = [];
      for (let i = 0; i < ${PATHS}; i++) updates.push(['/d/sw-' + (i % 500) + '/if-' + i + '/octets_in_counter_value', b * 1000 + i + 0.5]);
      archive.writer.append(updates, ${T0} + b * 1_000_000);
    }`,
  ].join('\n');
  return startArchiveServer(fill, { imports: { SERVER_LIMITS: 'server/limits.ts' } });
}

/** The slowest /health answer (ms; Infinity: none within HEALTH_WITHIN_MS) while `work` runs. */
async function slowestHealthDuring<T>(s: ChildServer, work: Promise<T>): Promise<{ slowest: number; result: T }> {
  let slowest = 0;
  let done = false;
  const probes = (async () => {
    while (!done) {
      const t0 = Date.now();
      const ok = await s.healthAnswers(HEALTH_WITHIN_MS);
      slowest = Math.max(slowest, ok ? Date.now() - t0 : Infinity);
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  const result = await work;
  done = true;
  await probes;
  return { slowest, result };
}

const asOf = `/api/v1/state?at=${T0 + 2_000_000}&glob=/d/**`;
const diff = `/api/v1/diff?start=${T0}&glob=/d/**`;
const list = '/api/v1/paths?glob=/d/**';

interface Answer {
  status: number;
  /** When it came whole (Date.now()). */
  at: number;
  retryAfter: string | null;
  /** The body, parsed only once the burst is over (this process parsing megabytes would delay its own probes). */
  text: string;
}

async function ask(s: ChildServer, path: string): Promise<Answer> {
  const res = await fetch(s.url + path, { signal: AbortSignal.timeout(120_000) });
  const text = await res.text();
  return { status: res.status, at: Date.now(), retryAfter: res.headers.get('retry-after'), text };
}

/** The error code, or how many paths the answer has (a state's values, a diff's changed count, a list's paths). */
function read(a: Answer): { status: number; code?: string; count: number } {
  const body = JSON.parse(a.text) as { error?: { code: string }; values?: Record<string, unknown>; counts?: { changed: number }; paths?: unknown[] };
  const count = body.values ? Object.keys(body.values).length : body.counts ? body.counts.changed : body.paths?.length ?? -1;
  return { status: a.status, ...(body.error ? { code: body.error.code } : {}), count };
}

describe('large JSON answers asked at once', () => {
  it('are built a few at a time: /health answers meanwhile, and every answer is whole', async () => {
    const s = (server = await start());
    const t0 = Date.now();
    const { slowest, result } = await slowestHealthDuring(s, Promise.all([...Array.from({ length: AT_ONCE }, (_, i) => ask(s, i % 2 === 0 ? asOf : diff)), ...Array.from({ length: LISTS_AT_ONCE }, () => ask(s, list))]));
    // Built a few at a time, answers come one after another from the start (the first after
    // 4 % of the burst in a run); built all at once, each got a hundredth of the server: the
    // first came after 17 %, /health waited 7.7 s, and diffs ran past diffTimeBudgetMs (503).
    const heavy = result.slice(0, AT_ONCE).map((r) => r.at - t0).sort((a, b) => a - b);
    const [first, last] = [heavy[0] as number, heavy[heavy.length - 1] as number];
    expect(first / last, `first answer after ${first} ms, last after ${last} ms`).toBeLessThan(0.25);
    expect(slowest, `slowest /health: ${slowest} ms`).toBeLessThan(HEALTH_WITHIN_MS);
    for (const r of result) expect(read(r)).toEqual({ status: 200, count: PATHS });
  }, 120_000);

  it('past jsonAnswersWaitingMax waiting, are refused 503 TPD_BUSY with a Retry-After', async () => {
    const s = (server = await start(4));
    const result = await Promise.all(Array.from({ length: 24 }, () => ask(s, asOf)));
    const busy = result.filter((r) => r.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    for (const r of busy) {
      expect(read(r).code).toBe('TPD_BUSY');
      expect(r.retryAfter).toBe('1');
    }
    for (const r of result.filter((x) => x.status !== 503)) expect(read(r)).toEqual({ status: 200, count: PATHS });
    // Once they are done, the next is built at once.
    expect(read(await ask(s, asOf))).toEqual({ status: 200, count: PATHS });
  }, 120_000);
});
