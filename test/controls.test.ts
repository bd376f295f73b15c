/**
 * parseControls (protocol/controls.ts) table by table, with a fixed "now": every form of
 * start/end/pos, speed bounds, state, loop, and the TPD_BAD_CONTROL error naming the
 * control for each bad value.
 */
import { describe, expect, it } from 'vitest';
import { parseControls, parseFilter, SPEED_MAX, SPEED_MIN, type ControlsInput, type ParsedControls } from '../protocol/controls.js';
import { TapedeckError } from '../protocol/errors.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';

const SEEK_STEPS_MAX = PROTOCOL_LIMITS.seekStepsMax;

/** 2023-11-14T22:13:20.123456Z, with sub-millisecond digits so offsets must keep them. */
const NOW = 1_700_000_000_123_456;
const NOW_MS = Math.floor(NOW / 1000);
const SUB_MS = NOW % 1000;
const S = 1_000_000;

/** NOW moved by calendar fields in UTC, computed without luxon. */
function calendar(dy: number, dM: number): number {
  const d = new Date(NOW_MS);
  const ms = Date.UTC(d.getUTCFullYear() + dy, d.getUTCMonth() + dM, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
  return ms * 1000 + SUB_MS;
}

const ts = (us: number): ParsedControls['start'] => ({ kind: 'ts', us });

/** Time forms accepted by start, end and pos alike. */
const TIMES: Array<[string | number, number]> = [
  // RFC 3339
  ['2023-11-14T22:13:20Z', 1_700_000_000 * S],
  ['2023-11-14T22:13:20.5Z', 1_700_000_000_500_000],
  ['2023-11-14T22:13:20.123456Z', 1_700_000_000_123_456],
  ['2023-11-14T22:13:20.123456789Z', 1_700_000_000_123_456],
  ['2023-11-15T00:13:20+02:00', 1_700_000_000 * S],
  ['2023-11-14T17:13:20.000001-05:00', 1_700_000_000_000_001],
  ['2023-11-14 22:13:20Z', 1_700_000_000 * S],
  ['2023-11-14t22:13:20z', 1_700_000_000 * S],
  ['1970-01-01T00:00:00Z', 0],
  // Epoch numbers, unit by magnitude: seconds, milliseconds, microseconds.
  [1_700_000_000, 1_700_000_000 * S],
  [1_700_000_000.25, 1_700_000_000_250_000],
  [1_700_000_000_123, 1_700_000_000_123_000],
  [1_700_000_000_123_456, 1_700_000_000_123_456],
  ['1700000000', 1_700_000_000 * S],
  ['1700000000123', 1_700_000_000_123_000],
  ['1700000000123456', 1_700_000_000_123_456],
  [0, 0],
  // Offsets from now, every unit, both signs.
  ['-3d', NOW - 3 * 86_400 * S],
  ['+3d', NOW + 3 * 86_400 * S],
  ['-90m', NOW - 90 * 60 * S],
  ['+90m', NOW + 90 * 60 * S],
  ['+1h', NOW + 3600 * S],
  ['-1h', NOW - 3600 * S],
  ['-1.5h', NOW - 5400 * S],
  ['-30s', NOW - 30 * S],
  ['+30s', NOW + 30 * S],
  ['-0s', NOW],
  ['-2y', calendar(-2, 0)],
  ['+2y', calendar(2, 0)],
  ['-1M', calendar(0, -1)],
  ['+1M', calendar(0, 1)],
  ['-14M', calendar(0, -14)],
  [' -3d ', NOW - 3 * 86_400 * S],
  // Weeks and compound durations: the unit table of protocol/duration.ts (weeks were refused
  // before the time grammar was made one; accepted on purpose now).
  ['-3w', NOW - 21 * 86_400 * S],
  ['-1h30m', NOW - 5400 * S],
  ['+250ms', NOW + 250_000],
  // The explicit form of "relative to now".
  ['now', NOW],
  ['now-3d', NOW - 3 * 86_400 * S],
  ['now+1M', calendar(0, 1)],
];

describe('parseControls: start and end', () => {
  for (const control of ['start', 'end'] as const) {
    it.each(TIMES)(`${control} %j`, (input, want) => {
      expect(parseControls({ [control]: input }, NOW)).toStrictEqual({ [control]: ts(want) });
    });
    it.each(['unbounded', 'UNBOUNDED', ' Unbounded '])(`${control} %j is unbounded`, (input) => {
      expect(parseControls({ [control]: input }, NOW)).toStrictEqual({ [control]: { kind: 'unbounded' } });
    });
  }

  it('months and years are calendar units, not fixed lengths', () => {
    // 2023-11-14 minus one month is 2023-10-14 (31 days back), minus two years 2021-11-14.
    expect(parseControls({ start: '-1M' }, NOW).start).toStrictEqual(ts(NOW - 31 * 86_400 * S));
    expect(parseControls({ start: '-2y' }, NOW).start).toStrictEqual(ts(NOW - (365 + 365) * 86_400 * S));
    // 'm' is minutes, 'M' months.
    expect(parseControls({ start: '-1m' }, NOW).start).toStrictEqual(ts(NOW - 60 * S));
  });

  it('takes start and end together, end equal to start included', () => {
    expect(parseControls({ start: '-2h', end: '-1h' }, NOW)).toStrictEqual({ start: ts(NOW - 7200 * S), end: ts(NOW - 3600 * S) });
    expect(parseControls({ start: 1_700_000_000, end: '2023-11-14T22:13:20Z' }, NOW)).toStrictEqual({ start: ts(1_700_000_000 * S), end: ts(1_700_000_000 * S) });
    expect(parseControls({ start: 'unbounded', end: '+1h' }, NOW)).toStrictEqual({ start: { kind: 'unbounded' }, end: ts(NOW + 3600 * S) });
  });
});

describe('parseControls: pos', () => {
  const cases: Array<[string | number, ParsedControls['pos']]> = [
    ['beginning', { kind: 'beginning' }],
    ['end', { kind: 'end' }],
    [' end ', { kind: 'end' }],
    ['+1', { kind: 'steps', n: 1 }],
    ['-1', { kind: 'steps', n: -1 }],
    ['+128', { kind: 'steps', n: 128 }],
    ['-128', { kind: 'steps', n: -128 }],
    [`+${SEEK_STEPS_MAX}`, { kind: 'steps', n: SEEK_STEPS_MAX }],
    [`-${SEEK_STEPS_MAX}`, { kind: 'steps', n: -SEEK_STEPS_MAX }],
    ['2023-11-14T22:13:20.123456Z', { kind: 'ts', us: 1_700_000_000_123_456 }],
    [1_700_000_000_123, { kind: 'ts', us: 1_700_000_000_123_000 }],
    ['-3d', { kind: 'ts', us: NOW - 3 * 86_400 * S }],
    ['+1h', { kind: 'ts', us: NOW + 3600 * S }],
    ['-90m', { kind: 'ts', us: NOW - 90 * 60 * S }],
    ['-10y', { kind: 'ts', us: calendar(-10, 0) }],
    // The explicit batch form.
    ['+5b', { kind: 'steps', n: 5 }],
    ['-5b', { kind: 'steps', n: -5 }],
  ];
  it.each(cases)('pos %j', (input, want) => {
    expect(parseControls({ pos: input }, NOW)).toStrictEqual({ pos: want });
  });

  it('tells steps ("+N"/"-N") from offsets ("+Nh") and epoch numbers', () => {
    expect(parseControls({ pos: '+2' }, NOW).pos).toStrictEqual({ kind: 'steps', n: 2 });
    expect(parseControls({ pos: '+2s' }, NOW).pos).toStrictEqual({ kind: 'ts', us: NOW + 2 * S });
    expect(parseControls({ pos: '1700000000' }, NOW).pos).toStrictEqual({ kind: 'ts', us: 1_700_000_000 * S });
  });

  it('resolves pos±D against the session position, not against now', () => {
    const POS = 1_600_000_000_000_001;
    expect(parseControls({ pos: 'pos-5m' }, NOW, POS).pos).toStrictEqual({ kind: 'ts', us: POS - 300 * S });
    expect(parseControls({ pos: 'pos+30s' }, NOW, POS).pos).toStrictEqual({ kind: 'ts', us: POS + 30 * S });
    expect(parseControls({ start: 'pos-1h', end: 'pos+1h' }, NOW, POS)).toStrictEqual({ start: ts(POS - 3600 * S), end: ts(POS + 3600 * S) });
    // The short form stays relative to now whatever the position.
    expect(parseControls({ pos: '-5m' }, NOW, POS).pos).toStrictEqual({ kind: 'ts', us: NOW - 300 * S });
  });

  it('refuses pos±D before the first batch, naming the control', () => {
    const e = rejects({ pos: 'pos-5m' }, null);
    expect(e).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control: 'pos' } });
    expect(e.message).toMatch(/^pos: .*no position yet/);
  });

  it('says what was given and what the control takes', () => {
    expect(rejects({ start: '-5' }).message).toBe(
      'start: "-5" is a batch step (-5, +5, -5b, +5b), not taken here; this takes an absolute time (RFC 3339 or an epoch number), ' +
        'a time relative to now (now, now-5m, -5m, +1h) or a time relative to the position (pos-5m, pos+30s)',
    );
    expect(rejects({ pos: `+${SEEK_STEPS_MAX + 1}` }).message).toMatch(/^pos: .*1 to 100000 batches \(seekStepsMax\)/);
  });
});

describe('parseControls: speed, state, loop', () => {
  const speeds: Array<[string | number, number | 'unlimited']> = [
    [SPEED_MIN, 0.01],
    [0.01, 0.01],
    [0.5, 0.5],
    [1, 1],
    [4, 4],
    [SPEED_MAX, 1000],
    [1000, 1000],
    ['2', 2],
    ['0.01', 0.01],
    ['1000', 1000],
    ['unlimited', 'unlimited'],
    ['UNLIMITED', 'unlimited'],
  ];
  it.each(speeds)('speed %j', (input, want) => {
    expect(parseControls({ speed: input }, NOW)).toStrictEqual({ speed: want });
  });

  it.each(['play', 'pause', 'tail'] as const)('state %j', (state) => {
    expect(parseControls({ state }, NOW)).toStrictEqual({ state });
  });

  it.each([true, false])('loop %j', (loop) => {
    expect(parseControls({ loop }, NOW)).toStrictEqual({ loop });
  });

  it('parses every control at once, and nothing when given nothing', () => {
    expect(parseControls({}, NOW)).toStrictEqual({});
    expect(parseControls({ start: '-1d', end: 'unbounded', pos: '-5', speed: 'unlimited', state: 'pause', loop: true }, NOW)).toStrictEqual({
      start: ts(NOW - 86_400 * S),
      end: { kind: 'unbounded' },
      pos: { kind: 'steps', n: -5 },
      speed: 'unlimited',
      state: 'pause',
      loop: true,
    });
  });
});

/** Calls parseControls expecting TPD_BAD_CONTROL; returns the error. */
function rejects(input: unknown, posUs?: number | null): TapedeckError {
  let caught: unknown;
  try {
    parseControls(input as ControlsInput, NOW, posUs);
  } catch (err) {
    caught = err;
  }
  expect(caught, `${JSON.stringify(input)} was accepted`).toBeInstanceOf(TapedeckError);
  return caught as TapedeckError;
}

describe('parseControls: bad values give TPD_BAD_CONTROL naming the control', () => {
  const bad: Array<[string, unknown]> = [
    // speed: out of [0.01, 1000], not a number, wrong type
    ['speed', 0],
    ['speed', 0.009],
    ['speed', 1000.1],
    ['speed', -1],
    ['speed', 'fast'],
    ['speed', ''],
    ['speed', '1001'],
    ['speed', Number.NaN],
    ['speed', Number.POSITIVE_INFINITY],
    ['speed', true],
    // state
    ['state', 'rewind'],
    ['state', 'PLAY'],
    ['state', 'stop'],
    ['state', ''],
    ['state', 1],
    // loop
    ['loop', 'yes'],
    ['loop', 1],
    ['loop', null],
    // pos: step counts out of range, garbage, wrong type
    ['pos', '+0'],
    ['pos', '-0'],
    ['pos', `+${SEEK_STEPS_MAX + 1}`],
    ['pos', `-${SEEK_STEPS_MAX + 1}`],
    ['pos', 'middle'],
    ['pos', '+1e3'],
    ['pos', '-3x'],
    ['pos', '+0b'],
    ['pos', `-${SEEK_STEPS_MAX + 1}b`],
    // relative to the position, but no position given
    ['pos', 'pos-5m'],
    ['start', 'pos+30s'],
    ['pos', -1],
    ['pos', { ts: 1 }],
    // start / end: garbage, unknown unit, negative epoch, before 1970, wrong type
    ['start', 'yesterday'],
    ['start', '-3x'],
    ['start', '-1.5M'],
    // batch steps are for pos only
    ['start', '-5'],
    ['end', '+5b'],
    ['start', '3d'],
    ['start', '--3d'],
    ['start', '2023-11-14'],
    ['start', '2023-11-14T22:13:20'],
    ['start', -1],
    ['start', '-100y'],
    ['start', '+99999999999y'],
    ['start', Number.NaN],
    ['start', true],
    ['end', 'tomorrow'],
    ['end', ''],
    ['end', null],
    ['end', ['-1h']],
  ];
  it.each(bad)('%s = %j', (control, value) => {
    const e = rejects({ [control]: value });
    expect(e.code).toBe('TPD_BAD_CONTROL');
    expect(e.status).toBe(400);
    expect(e.details).toMatchObject({ control });
    expect(e.message.startsWith(`${control}:`), e.message).toBe(true);
  });

  it('names an unknown control, and rejects a non-object', () => {
    const e = rejects({ rewind: true });
    expect(e).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control: 'rewind' } });
    expect(e.message).toMatch(/^rewind: /);
    expect(rejects(null)).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control: 'controls' } });
    expect(rejects('play')).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control: 'controls' } });
  });

  it('names end when it is before start', () => {
    const e = rejects({ start: '-1h', end: '-2h' });
    expect(e).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control: 'end' } });
    expect(e.message).toMatch(/^end: .*before start/);
  });

  it('names the bad one among good ones', () => {
    expect(rejects({ start: '-1h', speed: 'fast', state: 'play' }).details).toStrictEqual({ control: 'speed' });
    expect(rejects({ speed: 2, pos: '+0', loop: true }).details).toStrictEqual({ control: 'pos' });
  });

  // Epoch numbers out of range are refused like the same values as strings.
  it.each([
    ['start', 1e20],
    ['end', 1e21],
    ['pos', 3e16],
    ['pos', 1e-7],
  ])('an out-of-range epoch number %s = %j is TPD_BAD_CONTROL naming it', (control, value) => {
    const e = rejects({ [control]: value });
    expect(e.code).toBe('TPD_BAD_CONTROL');
    expect(e.details).toMatchObject({ control });
  });

  it('the same out-of-range epochs as strings are TPD_BAD_CONTROL', () => {
    for (const [control, value] of [['start', '100000000000000000000'], ['pos', '30000000000000000']] as const) {
      expect(rejects({ [control]: value })).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control } });
    }
  });

  // Date.parse rolls an impossible day over (Feb 30 -> Mar 2); parseTs refuses it.
  it.each(['2023-02-30T00:00:00Z', '2023-13-01T00:00:00Z', '2023-04-31T00:00:00Z', '2023-01-01T24:00:00Z', '2023-01-01T00:60:00Z'])('an impossible date %s is rejected', (start) => {
    expect(rejects({ start })).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control: 'start' } });
  });

  it.each(['0x1F', '1e2', ' ', '2xx'])('speed %j is not a decimal number: rejected', (speed) => {
    expect(rejects({ speed })).toMatchObject({ code: 'TPD_BAD_CONTROL', details: { control: 'speed' } });
  });
});

describe('parseFilter: a session filter is judged by the glob parser', () => {
  it('keeps well-formed globs and refuses the first malformed one with TPD_BAD_GLOB', () => {
    expect(parseFilter(['/fabric/sw-*/**', '/twin/*'])).toEqual(['/fabric/sw-*/**', '/twin/*']);
    expect(parseFilter([])).toEqual([]);
    for (const bad of [['['], ['/ok', '/a**b'], ['/x?'], [''], [7], '/not-a-list', null, Array(257).fill('/a')]) {
      let code: string | undefined;
      try {
        parseFilter(bad);
      } catch (err) {
        code = (err as TapedeckError).code;
      }
      expect(code, JSON.stringify(bad).slice(0, 30)).toBe('TPD_BAD_GLOB');
    }
  });
});

describe('burst and next: actions in the same parser', () => {
  const BURST_MAX = PROTOCOL_LIMITS.burstBatchesMax;
  const parse = (input: ControlsInput): ParsedControls => parseControls(input, NOW);

  it.each([
    [1, 1],
    [BURST_MAX, BURST_MAX],
    ['7', 7],
    [' 12 ', 12],
  ] as const)('burst %j sends %d batches', (burst, n) => {
    expect(parse({ burst })).toStrictEqual({ burst: n });
  });

  it('next is a burst of one that pauses', () => {
    expect(parse({ next: true })).toStrictEqual({ burst: 1, state: 'pause' });
    expect(parse({ next: true, state: 'pause', speed: 2 })).toStrictEqual({ burst: 1, state: 'pause', speed: 2 });
  });

  it('a burst keeps the other controls of the change: they apply first', () => {
    expect(parse({ pos: 'beginning', burst: 3, state: 'play' })).toStrictEqual({ pos: { kind: 'beginning' }, burst: 3, state: 'play' });
  });

  it.each([
    [{ burst: BURST_MAX + 1 }, 'burst'],
    [{ burst: 0 }, 'burst'],
    [{ burst: -1 }, 'burst'],
    [{ burst: 2.5 }, 'burst'],
    [{ burst: '+3' }, 'burst'],
    [{ burst: '3b' }, 'burst'],
    [{ burst: '1e3' }, 'burst'],
    [{ burst: Number.NaN }, 'burst'],
    [{ burst: Number.POSITIVE_INFINITY }, 'burst'],
    [{ burst: '9'.repeat(40) }, 'burst'],
    [{ burst: null }, 'burst'],
    [{ next: false }, 'next'],
    [{ next: 'true' }, 'next'],
    [{ next: true, burst: 1 }, 'next'],
    [{ next: true, state: 'tail' }, 'next'],
  ] as Array<[Record<string, unknown>, string]>)('%j is TPD_BAD_CONTROL naming %s', (input, control) => {
    const e = rejects(input);
    expect(e).toMatchObject({ code: 'TPD_BAD_CONTROL', status: 400, details: { control } });
    expect(e.message.startsWith(`${control}:`), e.message).toBe(true);
  });

  it('says the limit by name when N is over it', () => {
    expect(rejects({ burst: BURST_MAX + 1 }).message).toBe(`burst: sends 1 to ${BURST_MAX} batches (burstBatchesMax), got ${BURST_MAX + 1}`);
  });
});
