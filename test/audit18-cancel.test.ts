/**
 * A request whose client leaves stops: it gives back its place and stops computing at its
 * next slice (server/client-gone.ts). Before, nothing looked at the client's connection:
 * twenty clients that each sent a heavy PromQL query (a label regex within the bounds over
 * 1500 long values: 12 s of CPU alone) and hung up kept every place of the query gate
 * (promqlConcurrentQueriesMax) for 37 s after they left, every query meanwhile answered 503;
 * a /paths, /state or /diff request whose client left waited its turn in the answers' queue
 * (jsonAnswersWaitingMax: a queue of gone clients refused every newcomer 503) and a build
 * whose client left ran to its end (28 globs over 2000 long paths: 27 s, in one piece, as
 * glob matching yielded every specPathsPerYield paths only; now every specSliceMs too).
 * A /history read whose client left went on (its place among historyAnswersMax freed at
 * once) to its next chunk: for globs that match nothing, 27 s of matching to the end.
 * Without the fix (client-gone.ts's signal never aborted) every test here fails.
 *
 * Each test has hostile clients send over raw sockets and close them; the evidence is a
 * normal request answered 200 after they left (the place is free again), a request not
 * refused for a queue full of gone clients, and tapedeck_requests_canceled_total. The
 * servers run in child processes (the sources through tsx): their evaluations would hold
 * this test's event loop too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canceledCount, hangUpLater } from './helpers/hang-up.js';
import { LONG_LABEL_IMPORTS, longLabelFill, startArchiveServer, type ChildServer } from './helpers/child-server.js';
import { until } from './helpers/until.js';
import { SERVER_LIMITS } from '../server/limits.js';

/** Generous: a freed place shows within the next slice of a loaded child (not a timing target). */
const FREED_WITHIN_MS = 20_000;

const status = async (url: string): Promise<number> => (await fetch(url)).status;

describe('the Prometheus query API', () => {
  let server: ChildServer;
  /** 1500 ifInOctets series whose `instance` is 400 characters long: a regex within the bounds takes seconds over them. */
  beforeAll(async () => {
    server = await startArchiveServer(longLabelFill(1500, 400), { imports: LONG_LABEL_IMPORTS });
  }, 60_000);
  afterAll(() => server?.close());

  /** A regex of promqlRegexRepeatsMax - 1 repetitions that matches no value (none holds an x); `i` makes each client's own. */
  const heavy = (i: number): string => `ifInOctets{instance=~"${'.*'.repeat(SERVER_LIMITS.promqlRegexRepeatsMax - 1)}x${i}"}`;
  const nowS = Math.floor(Date.now() / 1000);
  const q = (route: string, params: Record<string, string>): string => `${route}?${new URLSearchParams(params).toString()}`;
  const kinds: Array<[string, (i: number) => string]> = [
    ['/api/v1/query', (i) => q('/api/v1/query', { query: `count(${heavy(i)})` })],
    ['/api/v1/query_range', (i) => q('/api/v1/query_range', { query: `count(${heavy(i)})`, start: String(nowS - 600), end: String(nowS), step: '60' })],
    ['/api/v1/series', (i) => q('/api/v1/series', { 'match[]': heavy(i) })],
    ['/api/v1/labels', (i) => q('/api/v1/labels', { 'match[]': heavy(i) })],
    ['/api/v1/label/<name>/values', (i) => q('/api/v1/label/instance/values', { 'match[]': heavy(i) })],
  ];
  /** A cheap query: 503 while every place of the gate is taken, else 200. */
  const probe = (): Promise<number> => status(`${server.url}/api/v1/query?query=vector(1)`);

  for (const [kind, path] of kinds) {
    it(`${kind}: ${SERVER_LIMITS.promqlConcurrentQueriesMax} clients that send a heavy request and hang up give every place back; a normal query is answered 200`, async () => {
      const before = await canceledCount(server.url, 'running');
      const hostile = await Promise.all(Array.from({ length: SERVER_LIMITS.promqlConcurrentQueriesMax }, (_, i) => hangUpLater(server.url, path(i))));
      // Every place taken: the probe is refused.
      await until(async () => (await probe()) === 503, FREED_WITHIN_MS, 'the hostile requests to take every place');
      for (const s of hostile) s.destroy();
      // Each stops at its next slice: the places are free long before their evaluations would end.
      await until(async () => (await probe()) === 200, FREED_WITHIN_MS, 'a normal query answered 200 after the hostile clients left');
      await until(async () => (await canceledCount(server.url, 'running')) >= before + SERVER_LIMITS.promqlConcurrentQueriesMax, FREED_WITHIN_MS, 'every hostile request counted as canceled');
      expect(await server.healthAnswers(5_000)).toBe(true);
      expect(server.exitCode).toBeUndefined();
    }, 120_000);
  }

  it('three rounds of hostile clients in a row (60): after each every place is free again, and the server answers right', async () => {
    for (let round = 0; round < 3; round++) {
      const hostile = await Promise.all(Array.from({ length: SERVER_LIMITS.promqlConcurrentQueriesMax }, (_, i) => hangUpLater(server.url, kinds[round]![1](round * 100 + i))));
      await until(async () => (await probe()) === 503, FREED_WITHIN_MS, `round ${round}: the hostile requests to take every place`);
      for (const s of hostile) s.destroy();
      await until(async () => (await probe()) === 200, FREED_WITHIN_MS, `round ${round}: a normal query answered 200 after the hostile clients left`);
    }
    const res = await fetch(`${server.url}/api/v1/query?query=${encodeURIComponent('count(ifInOctets)')}&time=${nowS}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { result: Array<{ value: [number, string] }> } }).data.result[0]!.value[1]).toBe('1500');
    expect(server.exitCode).toBeUndefined();
  }, 180_000);
});

describe('the whole JSON answers (/paths, /state, /diff) and their queue', () => {
  let server: ChildServer;
  const T0 = 1_700_000_000_000_000;
  /**
   * One place to build in and two to wait in, over 2000 paths of 61 segments of 60
   * characters: /paths with HEAVY_GLOBS takes seconds of glob matching (in slices).
   */
  beforeAll(async () => {
    const fill = [
      'SERVER_LIMITS.jsonAnswersBuiltMax = 1;',
      'SERVER_LIMITS.jsonAnswersWaitingMax = 2;',
      `const seg = 'a'.repeat(60);
      for (let b = 0; b < 2; b++) {
        const updates = [];
        for (let i = 0; i < 2000; i++) updates.push(['/h/' + Array(60).fill(seg).join('/') + '/leaf' + i, b * 10 + i]);
        archive.writer.append(updates, ${T0} + b * 1_000_000);
      }`,
    ].join('\n');
    server = await startArchiveServer(fill, { imports: { SERVER_LIMITS: 'server/limits.ts' } });
  }, 60_000);
  afterAll(() => server?.close());

  /** 28 globs that each walk every segment of a path before failing on its last: seconds over 2000 paths. */
  const HEAVY_GLOBS = Array.from({ length: 28 }, (_, i) => `glob=/**/${Array(24).fill('*a*a*a*a*a*a*a*').join('/')}/zz${i}/**`).join('&');
  const heavyPaths = `/api/v1/paths?${HEAVY_GLOBS}`;
  /** Time for a request sent over a raw socket to reach its place (sequencing only: the heavy builds take 27 s). */
  const ARRIVE_MS = 1_000;
  const arrived = (): Promise<void> => new Promise((r) => setTimeout(r, ARRIVE_MS));
  const iso = (us: number): string => new Date(us / 1000).toISOString();
  const routes: Array<[string, string]> = [
    ['/api/v1/paths', '/api/v1/paths?glob=/h/**'],
    ['/api/v1/state', `/api/v1/state?at=${iso(T0 + 1_000_000)}`],
    ['/api/v1/diff', `/api/v1/diff?start=${iso(T0)}&end=${iso(T0 + 1_000_000)}`],
  ];

  for (const [route, heavy] of [
    ['/api/v1/paths', heavyPaths],
    ['/api/v1/state', `/api/v1/state?at=${iso(T0 + 1_000_000)}&${HEAVY_GLOBS}`],
    ['/api/v1/diff', `/api/v1/diff?start=${iso(T0)}&end=${iso(T0 + 1_000_000)}&${HEAVY_GLOBS}`],
  ]) {
    it(`${route}: a build whose client leaves stops at its next slice and gives its place to the next`, async () => {
      const before = await canceledCount(server.url, 'running');
      const hostile = await hangUpLater(server.url, heavy as string);
      await arrived();
      hostile.destroy();
      await until(async () => (await canceledCount(server.url, 'running')) > before, FREED_WITHIN_MS, 'the heavy build counted as canceled');
      expect(await status(server.url + (routes[0] as [string, string])[1])).toBe(200);
    }, 120_000);
  }

  it('/api/v1/history: a read whose client leaves stops (its place among historyAnswersMax was freed at once already)', async () => {
    const before = await canceledCount(server.url, 'running');
    // 27 s of glob matching before a first chunk: still at it a second later.
    const hostile = await hangUpLater(server.url, `/api/v1/history?${HEAVY_GLOBS}`);
    await arrived();
    hostile.destroy();
    await until(async () => (await canceledCount(server.url, 'running')) > before, FREED_WITHIN_MS, 'the history read counted as canceled');
    const res = await fetch(`${server.url}/api/v1/history?glob=/h/**/leaf1`);
    expect(res.status).toBe(200);
    expect((await res.text()).split('\n').filter((l) => l !== '')).toHaveLength(2);
  }, 120_000);

  for (const [route, path] of routes) {
    it(`${route}: requests whose clients left while queued leave the queue at once; the next one is queued, not refused, and answered`, async () => {
      const before = await canceledCount(server.url, 'waiting');
      // The place: a heavy build whose client stays.
      const holder = await hangUpLater(server.url, heavyPaths);
      await arrived();
      // The queue filled by clients that leave (jsonAnswersWaitingMax is 2 here).
      const gone = await Promise.all([hangUpLater(server.url, path), hangUpLater(server.url, path)]);
      await arrived();
      for (const s of gone) s.destroy();
      await until(async () => (await canceledCount(server.url, 'waiting')) >= before + 2, FREED_WITHIN_MS, 'the gone clients to leave the queue');
      // Queued now (before, 503 TPD_BUSY for a queue of clients long gone); answered once the holder leaves.
      const next = fetch(server.url + path);
      await new Promise((r) => setTimeout(r, 300));
      holder.destroy();
      const res = await next;
      expect(res.status).toBe(200);
      expect(server.exitCode).toBeUndefined();
    }, 120_000);
  }
});
