import { describe, expect, it } from 'vitest';
import { isDeepStrictEqual } from 'node:util';
import { request } from 'undici';
import { formatTs } from '../protocol/time.js';
import type { Batch, Value } from '../protocol/value.js';
import { valueFromJson, valueToJson } from '../protocol/value-json.js';
import { DiffFold, sameValue, type DiffAnswer, type PathDiff } from '../server/diff.js';
import { startServer, type TestServer } from './helpers/server.js';
import { scheduleSeed } from './helpers/seed.js';
import { randomValue, rng } from './helpers/workload.js';

const T0 = 1_763_000_000_000_000;
const S = 1_000_000;

async function get(url: string): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

type DiffBody = DiffAnswer & { start: { ts: number; time: string }; end: { ts: number; time: string }; horizon: number | null; warning?: { code: string } };

async function diff(srv: TestServer, query: string): Promise<DiffBody> {
  const r = await get(`${srv.url}/api/v1/diff?${query}`);
  expect(r.status, r.text).toBe(200);
  return JSON.parse(r.text) as DiffBody;
}

const q = (startUs: number, endUs: number, ...globs: string[]): string =>
  [`start=${encodeURIComponent(formatTs(startUs))}`, `end=${encodeURIComponent(formatTs(endUs))}`, ...globs.map((g) => `glob=${encodeURIComponent(g)}`)].join('&');

/** Every update of the archive, read back through /api/v1/history (NDJSON), by path. */
async function historyByPath(srv: TestServer, globs: string[]): Promise<Map<string, Array<[number, Value]>>> {
  const r = await get(`${srv.url}/api/v1/history?${globs.map((g) => `glob=${encodeURIComponent(g)}`).join('&')}`);
  expect(r.status).toBe(200);
  const out = new Map<string, Array<[number, Value]>>();
  for (const line of r.text.split('\n')) {
    if (line === '') continue;
    const b = JSON.parse(line) as { ts: number; updates: Record<string, unknown> };
    for (const [p, j] of Object.entries(b.updates)) {
      if (!out.has(p)) out.set(p, []);
      out.get(p)!.push([b.ts, valueFromJson(j, p)]);
    }
  }
  return out;
}

/**
 * The same answer as /api/v1/diff, by a naive replay of the history: per path, the value
 * before start, then every update of (start, end]. Equality of values is on their JSON
 * form (object key order aside), an independent route to the same rule.
 */
function naiveDiff(hist: Map<string, Array<[number, Value]>>, startUs: number, endUs: number): DiffAnswer {
  const paths: PathDiff[] = [];
  const appeared: string[] = [];
  const disappeared: string[] = [];
  let unchanged = 0;
  const none = (v: Value | undefined): boolean => v === undefined || v === null;
  for (const p of [...hist.keys()].sort()) {
    const ups = hist.get(p)!;
    let before: Value | undefined;
    for (const [ts, v] of ups) if (ts <= startUs) before = v;
    let held = before;
    let changes = 0;
    let updates = 0;
    let first = 0;
    let last = 0;
    const nums: number[] = typeof before === 'number' && !Number.isNaN(before) ? [before] : [];
    for (const [ts, v] of ups) {
      if (ts <= startUs || ts > endUs) continue;
      updates++;
      if (typeof v === 'number' && !Number.isNaN(v)) nums.push(v);
      if (held !== undefined && isDeepStrictEqual(valueToJson(held), valueToJson(v))) continue;
      held = v;
      if (changes++ === 0) first = ts;
      last = ts;
    }
    if (changes === 0) {
      if (before !== undefined) unchanged++;
      continue;
    }
    if (none(before) && !none(held)) appeared.push(p);
    if (!none(before) && none(held)) disappeared.push(p);
    const entry: PathDiff = { path: p, changes, updates, firstTs: first, firstTime: formatTs(first), lastTs: last, lastTime: formatTs(last) };
    if (before !== undefined) entry.start = valueToJson(before);
    if (held !== undefined) entry.end = valueToJson(held);
    if (nums.length > 0) {
      entry.min = valueToJson(nums.reduce((a, b) => (b < a || Object.is(b, -0) && a === 0 ? b : a)));
      entry.max = valueToJson(nums.reduce((a, b) => (b > a ? b : a)));
    }
    paths.push(entry);
  }
  return { paths, appeared, disappeared, counts: { changed: paths.length, appeared: appeared.length, disappeared: disappeared.length, unchanged }, truncated: false };
}

/** The known archive: one batch a second from T0. */
const KNOWN: Batch[] = [
  { ts: T0, updates: [['/n/a', 1], ['/n/gone', 5], ['/s/x', 'up'], ['/s/nul', null], ['/h/"quoted" é', { $num: 'not a tag' } as unknown as Value]] },
  { ts: T0 + S, updates: [['/n/a', 1], ['/s/x', 'up'], ['/n/b', -0]] },
  { ts: T0 + 2 * S, updates: [['/n/a', 7], ['/n/gone', null], ['/s/x', 'down'], ['/s/nul', 'now here'], ['/n/b', 0]] },
  { ts: T0 + 3 * S, updates: [['/n/a', -2], ['/n/b', NaN], ['/h/"quoted" é', Uint8Array.of(0, 255)]] },
  { ts: T0 + 4 * S, updates: [['/n/a', NaN], ['/n/big', 2n ** 70n], ['/n/b', Infinity]] },
];

describe('GET /api/v1/diff', () => {
  it('answers the value at start and end, changes, first/last change, min/max, appeared and disappeared', async () => {
    const srv = await startServer(KNOWN, {}, { imageFrequencyBytes: 256 });
    try {
      const r = await get(`${srv.url}/api/v1/diff?${q(T0, T0 + 4 * S)}`);
      expect(r.status).toBe(200);
      expect(r.headers['tapedeck-horizon']).toBe(`${formatTs(T0 + 4 * S)} ${T0 + 4 * S}`);
      const a = JSON.parse(r.text) as DiffBody;
      expect(a.start).toEqual({ ts: T0, time: formatTs(T0) });
      expect(a.horizon).toBe(T0 + 4 * S);
      const by = Object.fromEntries(a.paths.map((p) => [p.path, p]));
      // A repeated 1 is an update, not a change; NaN is left out of min/max.
      expect(by['/n/a']).toEqual({ path: '/n/a', start: 1, end: { $num: 'NaN' }, changes: 3, updates: 4, firstTs: T0 + 2 * S, firstTime: formatTs(T0 + 2 * S), lastTs: T0 + 4 * S, lastTime: formatTs(T0 + 4 * S), min: -2, max: 7 });
      expect(by['/n/b']).toMatchObject({ end: { $num: 'Infinity' }, changes: 4, min: { $num: '-0' }, max: { $num: 'Infinity' } });
      expect(by['/n/b']?.start).toBeUndefined();
      expect(by['/n/big']).toMatchObject({ end: { $bigint: String(2n ** 70n) }, changes: 1 });
      expect(by['/n/big']?.min).toBeUndefined();
      expect(by['/h/"quoted" é']).toMatchObject({ start: { $obj: { $num: 'not a tag' } }, end: { $bytes: 'AP8=' }, changes: 1 });
      expect(a.appeared).toEqual(['/n/b', '/n/big', '/s/nul']);
      expect(a.disappeared).toEqual(['/n/gone']);
      expect(a.counts).toEqual({ changed: 7, appeared: 3, disappeared: 1, unchanged: 0 });
      expect(a.truncated).toBe(false);

      // Past the horizon is clamped to it; a glob narrows; an empty range changes nothing.
      const late = await diff(srv, `${q(T0 + 3 * S, T0 + 3600 * S, '/n/*')}`);
      expect(late.end.ts).toBe(T0 + 4 * S);
      expect(late.paths.map((p) => p.path)).toEqual(['/n/a', '/n/b', '/n/big']);
      const still = await diff(srv, q(T0 + 2 * S, T0 + 2 * S));
      expect(still.paths).toEqual([]);
      expect(still.counts.unchanged).toBe(6); // /n/big is not recorded yet
      // No start: from the beginning, so every path appears (or is null: /s/nul stays "no value" until T0+2s).
      const all = await diff(srv, `end=${T0 + 4 * S}`);
      expect(all.appeared).toEqual(['/h/"quoted" é', '/n/a', '/n/b', '/n/big', '/s/nul', '/s/x']);
      const none = await diff(srv, 'glob=/nothing/**');
      expect(none.warning?.code).toBe('TPD_NO_MATCH');
      expect(none.paths).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it('equals a naive replay of /api/v1/history over random ranges of a random hostile archive (seeded)', async () => {
    const seed = scheduleSeed('DIFF_SEED', 'diff replay');
    const r = rng(seed);
    const names = ['/h/a b', '/h/é', '/h/__proto__', '/h/$num', '/h/"q"', '/n/0', '/n/1', '/n/2', '/s/k', '/s/l'];
    const held = new Map<string, Value>();
    const batches: Batch[] = [];
    for (let i = 0; i < 120; i++) {
      const updates: Batch['updates'] = [];
      for (const p of names) {
        const x = r();
        if (x < 0.45) continue;
        // Repeats (no change), numbers, nulls and every hostile kind of value.
        const v = x < 0.6 && held.has(p) ? held.get(p)! : x < 0.85 ? Math.round((r() - 0.5) * 100) : x < 0.9 ? null : randomValue(r);
        held.set(p, v);
        updates.push([p, v]);
      }
      if (updates.length > 0) batches.push({ ts: T0 + i * S, updates });
    }
    const srv = await startServer(batches, {}, { imageFrequencyBytes: 512 });
    try {
      const lastUs = batches.at(-1)!.ts;
      for (const globs of [[], ['/h/**'], ['/n/*', '/s/k']]) {
        const hist = await historyByPath(srv, globs);
        for (let k = 0; k < 15; k++) {
          const a = T0 - S + Math.floor(r() * 123) * S + (r() < 0.3 ? 1 : 0);
          const b = T0 - S + Math.floor(r() * 123) * S;
          const [startUs, endUs] = a <= b ? [a, b] : [b, a];
          const got = await diff(srv, q(startUs, endUs, ...globs));
          const { start: _s, end: _e, horizon: _h, ...rest } = got;
          expect(rest, `seed ${seed} start ${startUs} end ${endUs} globs ${globs.join(' ')}`).toEqual(naiveDiff(hist, startUs, Math.min(endUs, lastUs)));
        }
      }
    } finally {
      await srv.close();
    }
  });

  it('refuses malformed times and globs, end before start and unknown parameters with stable codes', async () => {
    const srv = await startServer(KNOWN);
    try {
      const cases: Array<[string, string]> = [
        ['start=yesterday-ish', 'TPD_BAD_ARGUMENT'],
        ['end=2026-13-45T00:00:00Z', 'TPD_BAD_ARGUMENT'],
        [`start=${T0 + 2 * S}&end=${T0}`, 'TPD_BAD_ARGUMENT'],
        ['glob=/a/[', 'TPD_BAD_GLOB'],
        ['glob=no-slash', 'TPD_BAD_GLOB'],
        [`glob=${'/x'.repeat(5000)}`, 'TPD_BAD_GLOB'],
        [`start=${'1'.repeat(65)}`, 'TPD_BAD_REQUEST'],
        ['paths=/n/*', 'TPD_BAD_REQUEST'],
        ['start=', 'TPD_BAD_REQUEST'],
      ];
      for (const [query, code] of cases) {
        const r = await get(`${srv.url}/api/v1/diff?${query}`);
        expect(r.status, query).toBe(400);
        expect(JSON.parse(r.text).error.code, query).toBe(code);
      }
    } finally {
      await srv.close();
    }
  });
});

describe('DiffFold', () => {
  it('compares values deeply: NaN equals NaN, 0 and -0 differ, bytes by content, key order aside', () => {
    expect(sameValue(NaN, NaN)).toBe(true);
    expect(sameValue(0, -0)).toBe(false);
    expect(sameValue(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(sameValue(Uint8Array.of(1, 2), [1, 2])).toBe(false);
    expect(sameValue({ a: 1, b: [2] }, { b: [2], a: 1 })).toBe(true);
    expect(sameValue({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameValue({ a: undefined } as unknown as Value, { b: 1 })).toBe(false);
    expect(sameValue(2n, 2n)).toBe(true);
    expect(sameValue(null, undefined)).toBe(false);
  });

  it('cuts each list at listedMax with truncated set, the counts staying exact', () => {
    const f = new DiffFold(new Map<number, Value>([[0, 1], [1, 'x']]), 2);
    for (let id = 0; id < 5; id++) f.apply(id, id === 1 ? null : 10 + id, 100 + id);
    const names = ['/e', '/d', '/c', '/b', '/a'];
    const a = f.answer((id) => names[id]!, 2);
    expect(a.paths.map((p) => p.path)).toEqual(['/a', '/b']);
    expect(a.appeared).toEqual(['/a', '/b']);
    expect(a.disappeared).toEqual(['/d']);
    expect(a.counts).toEqual({ changed: 5, appeared: 3, disappeared: 1, unchanged: 0 });
    expect(a.truncated).toBe(true);
    expect(f.answer((id) => names[id]!, 5).truncated).toBe(false);
  });
});
