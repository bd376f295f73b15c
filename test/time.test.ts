/**
 * The one time grammar (protocol/time.ts, docs/time.md): every form read into its tagged
 * result, every edge taking its kinds and refusing the others naming what was given and
 * what is allowed, hostile text, round trips and relative forms as properties (seeded, the
 * seed printed), the clamp report of batch steps, and the grammar at the real edges: a
 * server's REST parameters and the CLI's --at / --from.
 */
import fc from 'fast-check';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { durationMs } from '../protocol/duration.js';
import { TapedeckError } from '../protocol/errors.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import {
  addMonthsUtc, clampMessage, formatTs, parseTimeExpr, parseTs, parseWallTime, readTime, stepOutcome, TIME_KINDS,
  type TimeExpr, type TimeKind,
} from '../protocol/time.js';
import { Archive, wallClockUs } from '../storage/archive.js';
import { startServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';
import { tapedeck } from './helpers/cli.js';

const SEED = Number(process.env.TIME_SEED ?? Date.now() % 1_000_000);
/** 2023-11-14T22:13:20.123456Z, with sub-millisecond digits so offsets must keep them. */
const NOW = 1_700_000_000_123_456;
const POS = 1_600_000_000_000_001;
const S = 1_000_000;
const MIN = 60 * S;
const TS_MAX_US = Number.MAX_SAFE_INTEGER;

const now = (offsetUs: number, offsetMonths = 0): TimeExpr => ({ kind: 'now', offsetMonths, offsetUs });
const pos = (offsetUs: number, offsetMonths = 0): TimeExpr => ({ kind: 'pos', offsetMonths, offsetUs });

/** Every form of the grammar, what it reads as, and where it lands with NOW and POS. */
const FORMS: Array<[string | number, TimeExpr, number | null]> = [
  // absolute: RFC 3339 with an offset, up to µs (digits past µs are dropped)
  ['2023-11-14T22:13:20Z', { kind: 'abs', us: 1_700_000_000 * S }, 1_700_000_000 * S],
  ['2023-11-14T22:13:20.123456Z', { kind: 'abs', us: NOW }, NOW],
  ['2023-11-14T22:13:20.123456789Z', { kind: 'abs', us: NOW }, NOW],
  ['2023-11-15T00:13:20+02:00', { kind: 'abs', us: 1_700_000_000 * S }, 1_700_000_000 * S],
  ['2023-11-14 22:13:20z', { kind: 'abs', us: 1_700_000_000 * S }, 1_700_000_000 * S],
  // absolute: epoch numbers, unit by magnitude
  ['1700000000', { kind: 'abs', us: 1_700_000_000 * S }, 1_700_000_000 * S],
  ['1700000000.5', { kind: 'abs', us: 1_700_000_000_500_000 }, 1_700_000_000_500_000],
  ['1700000000123', { kind: 'abs', us: 1_700_000_000_123_000 }, 1_700_000_000_123_000],
  ['1700000000123456', { kind: 'abs', us: NOW }, NOW],
  [1_700_000_000, { kind: 'abs', us: 1_700_000_000 * S }, 1_700_000_000 * S],
  ['0', { kind: 'abs', us: 0 }, 0],
  // relative to now: the explicit and the short form are one
  ['now', now(0), NOW],
  ['now-5m', now(-5 * MIN), NOW - 5 * MIN],
  ['-5m', now(-5 * MIN), NOW - 5 * MIN],
  ['now+1h', now(3600 * S), NOW + 3600 * S],
  ['+1h', now(3600 * S), NOW + 3600 * S],
  ['-1h30m', now(-90 * MIN), NOW - 90 * MIN],
  ['-250ms', now(-250_000), NOW - 250_000],
  ['-1.5h', now(-90 * MIN), NOW - 90 * MIN],
  ['-2w', now(-14 * 86_400 * S), NOW - 14 * 86_400 * S],
  ['now-1M', now(0, -1), NOW - 31 * 86_400 * S],
  ['-1y', now(0, -12), NOW - 365 * 86_400 * S],
  ['-1M1d', now(-86_400 * S, -1), NOW - 32 * 86_400 * S],
  ['-0s', now(0), NOW],
  // relative to the session position
  ['pos-5m', pos(-5 * MIN), POS - 5 * MIN],
  ['pos+30s', pos(30 * S), POS + 30 * S],
  ['pos-1M', pos(0, -1), POS - 31 * 86_400 * S],
  // batch steps, bare and explicit
  ['-5', { kind: 'batches', n: -5 }, null],
  ['+5', { kind: 'batches', n: 5 }, null],
  ['-5b', { kind: 'batches', n: -5 }, null],
  ['+1b', { kind: 'batches', n: 1 }, null],
  [`-${PROTOCOL_LIMITS.seekStepsMax}`, { kind: 'batches', n: -PROTOCOL_LIMITS.seekStepsMax }, null],
  [' -5m ', now(-5 * MIN), NOW - 5 * MIN],
];

describe('the time grammar: every form', () => {
  it.each(FORMS)('%j reads as %j', (text, want, at) => {
    const r = parseTimeExpr(text);
    expect(r).toStrictEqual({ ok: true, value: want });
    const resolved = readTime(text, TIME_KINDS.pos, { nowUs: NOW, posUs: POS });
    expect(resolved).toStrictEqual({ ok: true, value: at === null ? want : { kind: 'ts', us: at } });
  });

  it('months are calendar months: the day is kept, or clamped to the month\'s last', () => {
    const jan31 = Date.UTC(2024, 0, 31, 12, 0, 0, 5) * 1000 + 7;
    expect(formatTs(addMonthsUtc(jan31, 1))).toBe('2024-02-29T12:00:00.005007Z');
    expect(formatTs(addMonthsUtc(jan31, 13))).toBe('2025-02-28T12:00:00.005007Z');
    expect(formatTs(addMonthsUtc(jan31, -2))).toBe('2023-11-30T12:00:00.005007Z');
    expect(formatTs(addMonthsUtc(jan31, -12 * 54))).toBe('1970-01-31T12:00:00.005007Z');
  });
});

/** Which kinds each edge takes, as the docs say. */
const EDGES: Array<[keyof typeof TIME_KINDS, TimeKind[]]> = [
  ['rest', ['abs', 'now']],
  ['cli', ['abs', 'now']],
  ['bound', ['abs', 'now', 'pos']],
  ['pos', ['abs', 'now', 'pos', 'batches']],
];

describe('each edge takes its kinds and refuses the others, saying which', () => {
  for (const [edge, kinds] of EDGES) {
    it(`${edge} takes ${kinds.join(', ')}`, () => {
      expect([...TIME_KINDS[edge]]).toStrictEqual(kinds);
      for (const [text, expr] of FORMS) {
        const r = readTime(text, TIME_KINDS[edge], { nowUs: NOW, posUs: POS });
        if (kinds.includes(expr.kind)) {
          expect(r.ok, `${edge} ${JSON.stringify(text)}`).toBe(true);
        } else {
          expect(r.ok, `${edge} ${JSON.stringify(text)}`).toBe(false);
          if (!r.ok) expect(r.message).toMatch(/, not taken here; this takes an absolute time/);
        }
      }
    });
  }

  it('REST and CLI: TPD_BAD_ARGUMENT naming the parameter, the text given and what is allowed', () => {
    const cases: Array<[string, RegExp]> = [
      ['-5', /^from: "-5" is a batch step \(-5, \+5, -5b, \+5b\), not taken here; this takes an absolute time \(RFC 3339 or an epoch number\) or a time relative to now \(now, now-5m, -5m, \+1h\)$/],
      ['+5b', /^from: "\+5b" is a batch step/],
      ['pos-5m', /^from: "pos-5m" is a time relative to the position .* not taken here/],
      ['5m', /^from: "5m" is not a time: /],
      ['yesterday', /^from: "yesterday" is not a time: /],
      ['-5x', /^from: "-5x": "5x" is not a duration/],
      ['-1.5M', /^from: "-1.5M": "1.5M": months and years take whole numbers$/],
      ['now-', /^from: "now-" is not a time: /],
      ['-100y', /^from: the offset goes before 1970$/],
      ['+300y', /^from: the offset goes past 2255$/],
      ['2023-02-30T00:00:00Z', /^from: invalid date/],
      ['2023-11-14T22:13:20', /^from: "2023-11-14T22:13:20" is not a time/],
    ];
    for (const [text, message] of cases) {
      let caught: unknown;
      try {
        parseWallTime(text, NOW, 'from');
      } catch (err) {
        caught = err;
      }
      expect(caught, text).toBeInstanceOf(TapedeckError);
      expect((caught as TapedeckError).code).toBe('TPD_BAD_ARGUMENT');
      expect((caught as TapedeckError).message, text).toMatch(message);
    }
  });

  it('pos±D needs a position: refused where there is no session, and before the first batch', () => {
    expect(readTime('pos-5m', TIME_KINDS.pos, { nowUs: NOW })).toMatchObject({ ok: false, message: expect.stringMatching(/needs a playback session position/) });
    expect(readTime('pos-5m', TIME_KINDS.pos, { nowUs: NOW, posUs: null })).toMatchObject({ ok: false, message: expect.stringMatching(/no position yet/) });
  });
});

describe('hostile and malformed time text is refused, never thrown past the edge or guessed', () => {
  const hostile: Array<string | number> = [
    '', ' ', '-', '+', 'now-', 'pos', 'pos+', 'NOW', 'now -5m', 'now--5m', '+-5m', '--5', '-5bb', '-5B', '- 5m',
    '-0', '+0', '-0b', `+${PROTOCOL_LIMITS.seekStepsMax + 1}`, '+1e3', '1e3', '0x10', '-Infinity', 'NaN',
    '-5m'.padEnd(PROTOCOL_LIMITS.timeTextCharsMax + 1, ' '), `-${'9'.repeat(PROTOCOL_LIMITS.timeTextCharsMax)}s`,
    `-${'9'.repeat(40)}s`, '+99999999999y', `-${'1s'.repeat(40)}`, '-5m\u0000', '-５m', '２０２３-11-14T22:13:20Z',
    '100000000000000000000', '30000000000000000', -1, Number.NaN, Number.POSITIVE_INFINITY, 1e-7, 1e21,
  ];
  it.each(hostile)('%j', (text) => {
    const r = readTime(text, TIME_KINDS.pos, { nowUs: NOW, posUs: POS });
    expect(r.ok, JSON.stringify(r)).toBe(false);
  });

  it(`arbitrary text never throws, and what reads is in range (seed ${SEED})`, () => {
    console.log(`time grammar property seed: ${SEED} (TIME_SEED=${SEED} to replay)`);
    const alphabet = fc.constantFrom(...'0123456789+-.:TZnowpsbmhdwyMµ Ɛ'.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: alphabet, maxLength: 24 })), (text) => {
        const r = readTime(text, TIME_KINDS.pos, { nowUs: NOW, posUs: POS });
        if (!r.ok) return r.message.length > 0;
        const v = r.value;
        if (v.kind === 'ts') return v.us >= 0 && v.us <= TS_MAX_US && Number.isSafeInteger(v.us);
        return Number.isInteger(v.n) && Math.abs(v.n) >= 1 && Math.abs(v.n) <= PROTOCOL_LIMITS.seekStepsMax;
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
});

describe('properties (seeded)', () => {
  const anyUs = fc.integer({ min: 0, max: TS_MAX_US });

  it(`formatTs then parseTs gives back every µs from 1970 to 2255 (seed ${SEED})`, () => {
    fc.assert(
      fc.property(anyUs, (us) => parseTs(formatTs(us)) === us && parseTimeExpr(formatTs(us)).ok),
      { seed: SEED, numRuns: 5000 },
    );
    for (const us of [0, 1, 999_999, TS_MAX_US]) expect(parseTs(formatTs(us))).toBe(us);
  });

  const UNITS_US: Array<[string, number]> = [['us', 1], ['ms', 1000], ['s', S], ['m', MIN], ['h', 60 * MIN], ['d', 1440 * MIN], ['w', 7 * 1440 * MIN]];
  const offset = fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(...UNITS_US), fc.constantFrom('-', '+'));

  it(`-D, now-D and +D, now+D are now ∓ D with an injected now; pos±D is the position ± D (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1_000_000_000 * S, max: 8_000_000_000 * S }), offset, (nowUs, [n, [unit, unitUs], sign]) => {
        const d = (sign === '-' ? -1 : 1) * n * unitUs;
        const want = { ok: true, value: { kind: 'ts', us: nowUs + d } };
        const ctx = { nowUs, posUs: nowUs - 12_345 * S };
        expect(readTime(`${sign}${n}${unit}`, TIME_KINDS.rest, ctx)).toStrictEqual(want);
        expect(readTime(`now${sign}${n}${unit}`, TIME_KINDS.rest, ctx)).toStrictEqual(want);
        expect(readTime(`pos${sign}${n}${unit}`, TIME_KINDS.pos, ctx)).toStrictEqual({ ok: true, value: { kind: 'ts', us: ctx.posUs + d } });
        // The offset is the duration the config parser reads from the same text.
        expect(Math.round(durationMs(`${n}${unit}`) * 1000)).toBe(n * unitUs);
      }),
      { seed: SEED + 1, numRuns: 3000 },
    );
  });
});

describe('batch steps report a clamp', () => {
  it('a step that ran into an end says which, and how far it went', () => {
    expect(stepOutcome(5, 5, NOW)).toStrictEqual({ us: NOW, moved: 5, clamped: null });
    expect(stepOutcome(-5, 5, NOW)).toStrictEqual({ us: NOW, moved: 5, clamped: null });
    expect(stepOutcome(5, 2, NOW)).toStrictEqual({ us: NOW, moved: 2, clamped: 'end' });
    expect(stepOutcome(-5, 0, null)).toStrictEqual({ us: null, moved: 0, clamped: 'start' });
    expect(clampMessage(5, stepOutcome(5, 5, NOW))).toBeNull();
    expect(clampMessage(5, stepOutcome(5, 2, NOW))).toBe('pos "+5": moved 2 of 5 batches and stopped at the end of the archive (2023-11-14T22:13:20.123456Z)');
    expect(clampMessage(-3, stepOutcome(-3, 0, null))).toBe('pos "-3": moved 0 of 3 batches and stopped at the start of the archive (the beginning)');
  });
});

// ---------------------------------------------------------------- the real edges

/**
 * Two batches an hour either side of the wall clock, so "now-5m" falls between them however
 * slowly the test runs.
 */
function aroundNow(): Array<{ ts: number; updates: Array<[string, number]> }> {
  const t = wallClockUs();
  return [
    { ts: t - 3600 * S, updates: [['/t/x', 1]] },
    { ts: t + 3600 * S, updates: [['/t/x', 2]] },
  ];
}

describe('the grammar at the edges', () => {
  it('REST: from=now-5m is taken like -5m; from=-5 is refused naming the batch step', async () => {
    const srv = await startServer(aroundNow());
    try {
      for (const from of ['now-5m', '-5m', 'now+2h']) {
        const r = await request(`${srv.url}/api/v1/history?glob=/t/x&from=${encodeURIComponent(from)}`);
        const lines = (await r.body.text()).trim().split('\n').filter((l) => l !== '');
        expect(r.statusCode, from).toBe(200);
        expect(lines.map((l) => JSON.parse(l).updates['/t/x']), from).toStrictEqual(from === 'now+2h' ? [] : [2]);
      }
      for (const from of ['-5', '+5b', 'pos-5m']) {
        const r = await request(`${srv.url}/api/v1/history?from=${encodeURIComponent(from)}`);
        const body = (await r.body.json()) as { error: { code: string; message: string } };
        expect(r.statusCode).toBe(400);
        expect(body.error.code).toBe('TPD_BAD_ARGUMENT');
        expect(body.error.message).toContain(`from: ${JSON.stringify(from)} is `);
        expect(body.error.message).toContain('this takes an absolute time (RFC 3339 or an epoch number) or a time relative to now');
      }
    } finally {
      await srv.close();
    }
  });

  it('CLI: inspect --at and export --from take the REST forms and refuse batch steps', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    for (const b of aroundNow()) a.writer!.append(b.updates, b.ts);
    await a.close();

    for (const [at, want] of [['now-5m', 1], ['-5m', 1], ['now+2h', 2]] as const) {
      const r = await tapedeck('inspect', dir, '--json', '--at', at);
      expect(r.code, `${at}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).stateAt.values, at).toStrictEqual({ '/t/x': want });
    }
    const step = await tapedeck('inspect', dir, '--at', '-5');
    expect(step.code).toBe(1);
    expect(step.stderr).toMatch(/TPD_BAD_ARGUMENT.*--at: "-5" is a batch step/);

    const out = `${dir}/out.ndjson`;
    const ex = await tapedeck('export', '--archive', dir, '--from', 'now-5m', '--out', out);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stderr).toMatch(/exported 1 batches/);
  });
});
