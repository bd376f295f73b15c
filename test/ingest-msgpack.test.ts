/**
 * Push ingest of binary WebSocket messages (msgpack, docs/recording.md): the pure decoder
 * (server/sources/push-lines.ts parseMsgpackMessage) against malformed bytes, and a real
 * server taking msgpack messages with the same counts, refusals and limits as NDJSON.
 * The fuzz case is seeded; the seed is printed.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import type { Value } from '../protocol/value.js';
import { valueFromJson } from '../protocol/value-json.js';
import { encodeMsgpack } from '../protocol/value-msgpack.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { parseMsgpackMessage, type PushedLine } from '../server/sources/push-lines.js';
import { recordingServer } from './helpers/recording-server.js';
import { readArchive as readBack } from './helpers/replay.js';
import { propertySeed, valueDiff } from './helpers/values.js';

const T0_US = 1_763_000_000_000_000;

const lines = (bytes: Uint8Array): PushedLine[] => [...parseMsgpackMessage(bytes)];
const bytes = (...parts: Array<number | Uint8Array | string>): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : typeof p === 'string' ? [...Buffer.from(p, 'latin1')] : [...p])));
/** msgpack str of an ASCII text shorter than 32 bytes. */
const fixstr = (s: string): Uint8Array => bytes(0xa0 | s.length, s);
/** `{ updates: { [path]: <value bytes> } }` with the value given as raw bytes. */
const oneUpdate = (path: string, value: Uint8Array): Uint8Array => bytes(0x81, fixstr('updates'), 0x81, fixstr(path), value);

function refusal(l: PushedLine | undefined): { code: string; message: string } {
  if (!l || !('error' in l)) throw new Error(`want a refused line, got ${JSON.stringify(l, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
  return { code: l.error.code, message: l.error.message };
}

describe('parseMsgpackMessage', () => {
  it('reads one map as line 1 and an array as lines 1..n, values exact, ts by the NDJSON rules', () => {
    const value: Value = { a: [NaN, -0, 2n ** 64n, '\ud800', new Uint8Array([0, 255])], __proto__x: null };
    const one = lines(encodeMsgpack({ ts: 1_763_000_000, updates: { '/a': value } }));
    expect(one).toHaveLength(1);
    const b = one[0] as { updates: Array<[string, Value]>; tsUs: number };
    expect(b.tsUs).toBe(1_763_000_000 * 1e6);
    expect(b.updates.map((u) => u[0])).toEqual(['/a']);
    expect(valueDiff(value, b.updates[0]?.[1])).toBeUndefined();
    const many = lines(encodeMsgpack([
      { updates: { '/b': 1 } },
      { ts: '2025-11-13T02:13:21.5Z', updates: { '/c': 'x', '/d': true } },
      { ts: T0_US, updates: { '/e': null } },
      { ts: T0_US / 1000, updates: { '/e': 1.5 } },
    ]));
    expect(many.map((l) => (l && 'updates' in l ? [l.tsUs, l.updates.length] : l))).toEqual([
      [undefined, 1], [Date.parse('2025-11-13T02:13:21.5Z') * 1000, 2], [T0_US, 1], [T0_US, 1],
    ]);
    // An empty array is an empty message: nothing to read, nothing refused.
    expect(lines(encodeMsgpack([]))).toEqual([]);
  });

  it('refuses a line that is not a good batch and reads on: shapes, paths, ts, duplicates', () => {
    const cases: Array<[Value, string, RegExp]> = [
      [7, 'TPD_BAD_INGEST_LINE', /msgpack map \{ ts\?, updates \}/],
      [[1, 2], 'TPD_BAD_INGEST_LINE', /msgpack map/],
      [{}, 'TPD_BAD_INGEST_LINE', /"updates" is missing/],
      [{ updates: {} }, 'TPD_BAD_INGEST_LINE', /"updates" is empty/],
      [{ updates: [['/a', 1]] }, 'TPD_BAD_INGEST_LINE', /must be a map/],
      [{ updates: 'x' }, 'TPD_BAD_INGEST_LINE', /must be a map/],
      [{ updates: { '/a': 1 }, extra: 1 }, 'TPD_BAD_INGEST_LINE', /key "extra" is unknown/],
      [{ updates: { nope: 1 } }, 'TPD_BAD_PATH', /"nope"/],
      [{ updates: { '/x\ud800': 1 } }, 'TPD_BAD_PATH', /invalid path/],
      [{ ts: 2n ** 60n, updates: { '/a': 1 } }, 'TPD_BAD_ARGUMENT', /beyond 2\^53/],
      [{ ts: -1, updates: { '/a': 1 } }, 'TPD_BAD_ARGUMENT', /non-negative/],
      [{ ts: 'yesterday', updates: { '/a': 1 } }, 'TPD_BAD_ARGUMENT', /./],
      [{ ts: [1], updates: { '/a': 1 } }, 'TPD_BAD_ARGUMENT', /epoch number/],
    ];
    // Each bad line sits between two good ones: the good ones are read, the bad one refused.
    const msg = cases.flatMap(([bad]) => [{ updates: { '/ok': 1 } }, bad]);
    const got = lines(encodeMsgpack(msg));
    expect(got).toHaveLength(cases.length * 2);
    cases.forEach(([, code, message], i) => {
      expect(got[2 * i]).toMatchObject({ updates: [['/ok', 1]] });
      const r = refusal(got[2 * i + 1]);
      expect([r.code, r.message], `case ${i}`).toEqual([code, expect.stringMatching(message)]);
    });
    // Keys twice (msgpack allows it; JSON.parse would keep the last silently): refused.
    const twice = bytes(0x92, 0x82, fixstr('updates'), 0x81, fixstr('/a'), 1, fixstr('updates'), 0x81, fixstr('/b'), 2, oneUpdate('/c', bytes(3)));
    const [first, second] = lines(twice);
    expect(refusal(first).message).toMatch(/"updates" is unknown or twice/);
    expect(second).toEqual({ updates: [['/c', 3]], tsUs: undefined });
    expect(refusal(lines(bytes(0x81, fixstr('updates'), 0x82, fixstr('/a'), 1, fixstr('/a'), 2))[0]).message).toMatch(/"\/a" is twice/);
    // A path that is not a string (msgpack maps take any key).
    expect(refusal(lines(bytes(0x81, fixstr('updates'), 0x81, 0x05, 1))[0]).code).toBe('TPD_BAD_PATH');
  });

  it('refuses truncated bytes at the line they cut, keeping the complete lines before (every prefix)', () => {
    const whole = encodeMsgpack([{ ts: T0_US, updates: { '/a': 'x'.repeat(40) } }, { updates: { '/b': [1, 2n ** 70n, { k: new Uint8Array(9) }] } }]);
    const firstEnd = encodeMsgpack({ ts: T0_US, updates: { '/a': 'x'.repeat(40) } }).length + 1;
    for (let n = 0; n < whole.length; n++) {
      const got = lines(whole.subarray(0, n));
      const good = n < firstEnd ? 0 : 1;
      expect(got, `prefix of ${n}`).toHaveLength(good + 1);
      expect(refusal(got[good]).message, `prefix of ${n}`).toMatch(/truncated|longer than its bytes/);
    }
    // Cut inside a value: the refusal names its path.
    const cut = lines(whole.subarray(0, whole.length - 3));
    expect(refusal(cut[1])).toMatchObject({ code: 'TPD_BAD_ARGUMENT', message: expect.stringContaining('"/b"') });
  });

  it('keeps a complete message and refuses bytes after it as one more line', () => {
    const got = lines(bytes(encodeMsgpack({ updates: { '/a': 1 } }), 0xc1, 0x00));
    expect(got[0]).toEqual({ updates: [['/a', 1]], tsUs: undefined });
    expect(refusal(got[1]).message).toMatch(/2 byte\(s\) after the message/);
    expect(got).toHaveLength(2);
  });

  it('refuses bytes that are no msgpack, naming the path of the value they are in, and stops there', () => {
    // 0xc1 starts no msgpack value; ext type 9 is no type of docs/values.md; a bigint ext of letters.
    for (const value of [bytes(0xc1), bytes(0xd4, 9, 0), bytes(0xd5, 2, 'ab')]) {
      const got = lines(bytes(0x92, oneUpdate('/bad', value), oneUpdate('/next', bytes(1))));
      expect(got, Buffer.from(value).toString('hex')).toHaveLength(1);
      expect(refusal(got[0])).toMatchObject({ code: 'TPD_BAD_ARGUMENT', message: expect.stringMatching(/^the value of "\/bad": malformed msgpack/) });
    }
    expect(refusal(lines(bytes())[0]).message).toMatch(/truncated/);
    expect(refusal(lines(bytes(0xc1))[0]).code).toBe('TPD_BAD_INGEST_LINE');
  });

  it('nests values as deep as the JSON form allows, and refuses one level more naming the path', () => {
    const nested = (d: number): string => '['.repeat(d) + ']'.repeat(d);
    let deepest = 0;
    while (deepest < 1000) {
      try {
        valueFromJson(JSON.parse(nested(deepest + 1)), '/d');
      } catch {
        break;
      }
      deepest++;
    }
    expect(deepest).toBeGreaterThan(10);
    const arrays = (d: number): Uint8Array => new Uint8Array(d).fill(0x91, 0, d - 1).fill(0x90, d - 1);
    expect(lines(oneUpdate('/d', arrays(deepest)))[0]).toMatchObject({ updates: [['/d', expect.any(Array)]] });
    expect(refusal(lines(oneUpdate('/d', arrays(deepest + 1)))[0])).toMatchObject({ code: 'TPD_BAD_ARGUMENT', message: expect.stringMatching(/"\/d".*nested deeper/) });
    // A million levels: refused at the limit, no stack overflow.
    expect(refusal(lines(oneUpdate('/d', arrays(1_000_000)))[0]).message).toMatch(/nested deeper/);
  });

  it('refuses huge counts without allocating for them', () => {
    const huge = [
      bytes(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0), // array of 2^32-1 lines
      bytes(0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0), // a map of 2^32-1 keys
      bytes(0x81, fixstr('updates'), 0xdf, 0x7f, 0xff, 0xff, 0xff), // updates of 2^31 paths
      oneUpdate('/big', bytes(0xc6, 0xff, 0xff, 0xff, 0xff, 1)), // bin of 4 GiB
      oneUpdate('/big', bytes(0xdb, 0xff, 0xff, 0xff, 0xf0)), // str of 4 GiB
      oneUpdate('/big', bytes(0xdd, 0x10, 0x00, 0x00, 0x00)), // array of 2^28
    ];
    for (const b of huge) {
      const got = lines(b);
      expect(got, Buffer.from(b).toString('hex')).toHaveLength(1);
      expect(refusal(got[0]).message).toMatch(/truncated|longer than its bytes/);
    }
  });

  it('decodes lazily: a caller that stops reading stops the decoding', () => {
    const n = 100_000;
    const garbage = bytes(0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, ...new Array<number>(n).fill(0x07));
    const it = parseMsgpackMessage(garbage);
    for (let i = 0; i < 3; i++) expect(refusal(it.next().value as PushedLine).message).toMatch(/msgpack map/);
    expect(it.return(undefined).done).toBe(true);
  });

  it('answers random bytes with lines or refusals, never a crash (seeded)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }).map((b) => bytes(0x93, 0x81, fixstr('updates'), b))), (b) => {
        for (const l of parseMsgpackMessage(b)) {
          if (l === null) throw new Error('a msgpack message has no empty lines');
          if ('error' in l) expect(isTapedeckError(l.error)).toBe(true);
          else expect(l.updates.length).toBeGreaterThan(0);
        }
      }),
      { seed: propertySeed('msgpack ingest fuzz'), numRuns: 2000 },
    );
  });
});

describe('msgpack over the WebSocket ingest', () => {
  async function open(url: string): Promise<{ ws: WebSocket; send: (b: Uint8Array) => Promise<Record<string, unknown>> }> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const send = (b: Uint8Array): Promise<Record<string, unknown>> => new Promise((resolve) => {
      ws.once('message', (d) => resolve(JSON.parse(String(d)) as Record<string, unknown>));
      ws.send(b, { binary: true });
    });
    return { ws, send };
  }

  it('records the good batches of a binary message, answers in JSON with line numbers, ack=durable', async () => {
    const srv = await recordingServer();
    const { ws, send } = await open(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws?ack=durable`);
    const a = await send(encodeMsgpack([
      { ts: T0_US, updates: { '/m/a': 2n ** 64n, '/m/b': new Uint8Array([1, 2]) } },
      { ts: T0_US + 1, updates: { 'm/c': 1 } },
      { ts: T0_US + 2, updates: { '/m/a': -0 } },
    ]));
    expect(a).toEqual({
      error: { code: 'TPD_BAD_INGEST_LINE', message: expect.stringContaining('line 2: TPD_BAD_PATH') },
      ack: 'durable', lines_read: 3, accepted_lines: 2, accepted_updates: 3, recorded_updates: 3, filtered_updates: 0, rejected_lines: 1, restamped_lines: 0,
      rejected: [{ line: 2, code: 'TPD_BAD_PATH', message: expect.stringContaining('"m/c"') }],
    });
    // One map alone is line 1.
    expect(await send(encodeMsgpack({ ts: T0_US + 3, updates: { '/m/d': '\udc00' } }))).toMatchObject({ lines_read: 1, accepted_lines: 1, rejected_lines: 0 });
    expect(await send(bytes(0xc1))).toMatchObject({ error: { code: 'TPD_BAD_INGEST_LINE' }, lines_read: 1, rejected: [{ line: 1, code: 'TPD_BAD_INGEST_LINE', message: expect.stringContaining('malformed msgpack') }] });
    ws.close();
    await srv.close();
    const got = await readBack(srv.dir);
    expect(got.map((b) => b.ts)).toEqual([T0_US, T0_US + 2, T0_US + 3]);
    const updates = got.flatMap((b) => b.updates);
    expect(updates.map((u) => u[0])).toEqual(['/m/a', '/m/b', '/m/a', '/m/d']);
    [2n ** 64n, new Uint8Array([1, 2]), -0, '\udc00'].forEach((v, i) => expect(valueDiff(v, updates[i]?.[1]), `update ${i}`).toBeUndefined());
  });

  it('stops a message of garbage at ingestBadLinesMax bad lines, like a text body', async () => {
    const srv = await recordingServer();
    const { ws, send } = await open(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws`);
    const n = SERVER_LIMITS.ingestBadLinesMax * 5;
    const a = await send(bytes(0xdc, n >>> 8, n & 0xff, encodeMsgpack({ updates: { '/g/ok': 1 } }), ...new Array<number>(n - 1).fill(0x07)));
    expect(a).toMatchObject({ error: { code: 'TPD_TOO_MANY_BAD_LINES' }, lines_read: SERVER_LIMITS.ingestBadLinesMax + 1, accepted_lines: 1, rejected_lines: SERVER_LIMITS.ingestBadLinesMax });
    ws.close();
    await srv.close();
    expect((await readBack(srv.dir)).map((b) => b.updates)).toEqual([[['/g/ok', 1]]]);
  });
});
