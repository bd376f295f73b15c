/**
 * Values that JSON.parse, a lenient UTF-8 decoder or a lenient text parser would change
 * without a word, at every edge that takes text or msgpack from outside: a key twice in one
 * JSON object (the first value lost), a number literal past the largest double (Infinity),
 * an integer past 2^53 from a polled API (rounded), bytes that are not UTF-8 (U+FFFD), a
 * msgpack map key twice or not a string, Go's float spellings and range errors in the
 * Prometheus text format, a label twice in a series. Each is either recorded exactly or
 * refused with a stable code, and nothing of a refused line is recorded.
 * Seeded (VALUES_EDGE_SEED replays a run).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import { parseExposition, parseFloatText } from '../protocol/prom-text.js';
import { decodeUtf8, type Value } from '../protocol/value.js';
import { parseJsonText, valueFromJson } from '../protocol/value-json.js';
import { parsePlainJsonText } from '../protocol/value-json-text.js';
import { MsgpackReader, MsgpackWriter, decodeMsgpack } from '../protocol/value-msgpack.js';
import { cellValue } from '../server/sources/csv.js';
import { expositionText } from '../server/sources/prom-scrape.js';
import { recordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { rig } from './helpers/upstreams.js';

const seed = scheduleSeed('VALUES_EDGE_SEED', 'values-edge-ingest');

const KEY_CHARS = ['a', 'b', ':', '"', '\\', '{', '}', '[', ']', ',', ' ', 'é', '\u0000', '1', '$', '/'];

/** Random JSON text (built by hand: keys may repeat when `dup`), with strings full of JSON punctuation. */
function randomJson(r: () => number, depth: number, dups: { n: number }, dupAt: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const str = (): string => JSON.stringify(Array.from({ length: Math.floor(r() * 6) }, () => pick(KEY_CHARS)).join(''));
  const x = r();
  if (depth >= 4 || x < 0.35) {
    return pick([() => str(), () => String(Math.floor(r() * 1e6) - 5e5), () => String((r() - 0.5) * 1e300), () => '1e-400', () => '"9007199254740993"', () => 'null', () => 'true', () => String(2 ** 60), () => '9007199254740992'])();
  }
  if (x < 0.55) return `[${Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth + 1, dups, dupAt)).join(',')}]`;
  const keys: string[] = [];
  for (let i = Math.floor(r() * 5); i > 0; i--) {
    const k = str();
    if (!keys.includes(k)) keys.push(k);
  }
  const members = keys.map((k) => `${k}:${randomJson(r, depth + 1, dups, dupAt)}`);
  // The dupAt-th object with a key gets that key again, with another value.
  if (keys.length > 0 && dups.n++ === dupAt) members.splice(Math.floor(r() * (members.length + 1)), 0, `${pick(keys)}:${randomJson(r, depth + 1, { n: -1e9 }, 0)}`);
  return `{${members.join(',')}}`;
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return isTapedeckError(err) ? `${err.code}: ${err.message}` : `${(err as Error).name}: ${(err as Error).message}`;
  }
  return 'accepted';
}

describe('JSON text: nothing JSON.parse would change silently is taken', () => {
  it('refuses a key twice in any object at any depth, and takes every text without one (strings full of ":" included)', () => {
    const r = rng(seed);
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const dups = { n: 0 };
      const dupAt = Math.floor(r() * 4);
      const text = randomJson(r, 0, dups, dupAt);
      const hasDup = dups.n > dupAt;
      const got = code(() => parseJsonText(text));
      if (hasDup) {
        refused++;
        expect(got, text).toMatch(/^TPD_BAD_ARGUMENT: .*is twice in one object/);
      } else {
        expect(got, text).toBe('accepted');
        expect(parseJsonText(text)).toEqual(JSON.parse(text));
      }
    }
    expect(refused).toBeGreaterThan(20);
    // A colon the text does not show (escaped) cannot hide a dropped member from the count.
    for (const t of ['{"a":1,"a":"\\u003a"}', '{"a:":1,"a:":2}', '{"b":"::","a":1,"a":2}', '{"t":1763000000000000,"a":[{"x":1,"x":2}]}']) {
      expect(code(() => parseJsonText(t)), t).toMatch(/^TPD_BAD_ARGUMENT: .*is twice in one object/);
    }
    // A duplicate 100 000 levels down: refused with a message of bounded length.
    const deep = `${'{"a":'.repeat(100_000)}{"x":1,"x":2}${'}'.repeat(100_000)}`;
    const msg = code(() => parseJsonText(deep));
    expect(msg).toMatch(/^TPD_BAD_ARGUMENT: \.a\.a.*…: key "x" is twice/);
    expect(msg.length).toBeLessThan(400);
    // The batch's own keys too: "updates" twice would drop the first batch's paths.
    expect(code(() => parseJsonText('{"updates":{"/a":1},"updates":{"/b":2}}'))).toMatch(/^TPD_BAD_ARGUMENT: \.updates: key "updates" is twice/);
    expect(code(() => parseJsonText('{"updates":{"/a":1,"/b":[{"x":1,"y":{"z":1,"z":2}}]}}'))).toMatch(/^TPD_BAD_ARGUMENT: \.updates\.\/b\[0\]\.y\.z: key "z" is twice/);
  });

  it('refuses number literals past the largest double instead of taking them as Infinity; takes the largest double and underflow to the nearest', () => {
    for (const lit of ['1e400', '-1e400', '1.8e308', `1${'0'.repeat(400)}`, `-${'9'.repeat(309)}`, '1E+999', '17976931348623159e292']) {
      expect(code(() => parseJsonText(`{"updates":{"/a":[0,${lit}]}}`)), lit).toMatch(/^TPD_BAD_ARGUMENT: \.updates\.\/a\[1\]: (number|integer) /);
    }
    // An integer past the double range is a bigint the sender can send as such.
    expect(code(() => parseJsonText(`[1${'0'.repeat(400)}]`))).toContain('{"$bigint":"');
    expect(parseJsonText('[1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 1e-400, 0.30000000000000004]')).toEqual([Number.MAX_VALUE, -Number.MAX_VALUE, 5e-324, 0, 0.1 + 0.2]);
    expect(Object.is(valueFromJson(parseJsonText('-0'), '/a'), -0)).toBe(true);
  });

  it('keeps an integer past 2^53 from a polled API (plain JSON) as the exact bigint, at any depth', () => {
    const r = rng(seed + 1);
    for (let i = 0; i < 200; i++) {
      const big = (BigInt(Math.floor(r() * 2 ** 53)) << BigInt(Math.floor(r() * 200))) + 2n ** 53n + 1n;
      const n = r() < 0.5 ? -big : big;
      // Strings that look like the placeholder do not become bigints.
      const text = `{"a":[1,{"b":${n}}],"c":"\\u0000tdbig${n}","d":${2 ** 60},"__proto__":${n}}`;
      const v = parsePlainJsonText(text) as Record<string, Value>;
      expect(((v.a as Value[])[1] as Record<string, Value>).b).toBe(n);
      expect(v.c).toBe(`\u0000tdbig${n}`);
      expect(v.d).toBe(2 ** 60);
      expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toBe(n);
    }
    expect(code(() => parsePlainJsonText('{"a":1,"a":2}'))).toMatch(/^TPD_BAD_ARGUMENT: \.a: key "a" is twice/);
    expect(code(() => parsePlainJsonText('[1e999]'))).toMatch(/^TPD_BAD_ARGUMENT: \[0\]: number 1e999/);
  });
});

describe('bigints are exact and bounded', () => {
  it('refuses a bigint past bigintDigitsMax digits at every ingest door, and takes one at the limit', () => {
    const max = PROTOCOL_LIMITS.bigintDigitsMax;
    const at = `-${'9'.repeat(max)}`;
    const past = '9'.repeat(max + 1);
    expect(valueFromJson({ $bigint: at }, '/a')).toBe(BigInt(at));
    expect(code(() => valueFromJson({ $bigint: past }, '/a'))).toMatch(/bigintDigitsMax/);
    const ext = (t: string): Uint8Array => Uint8Array.from([0xc8, t.length >> 8, t.length & 0xff, 2, ...Buffer.from(t)]);
    expect(decodeMsgpack(ext(at), true)).toBe(BigInt(at));
    expect(code(() => decodeMsgpack(ext(past), true))).toMatch(/bigintDigitsMax/);
    expect((parsePlainJsonText(`[${at}]`) as Value[])[0]).toBe(BigInt(at));
    expect(code(() => parsePlainJsonText(`[${past}]`))).toMatch(/^TPD_BAD_ARGUMENT: \[0\]: .*bigintDigitsMax/);
  });

  it('reads a CSV cell as the number it names exactly: a 64-bit counter as a bigint, a number past the largest double as its text', () => {
    expect(cellValue('9007199254740993')).toBe(9007199254740993n);
    expect(cellValue(' -18446744073709551617 ')).toBe(-18446744073709551617n);
    expect(cellValue('1152921504606846976')).toBe(2 ** 60);
    expect(cellValue('9007199254740992')).toBe(2 ** 53);
    expect(cellValue('1e400')).toBe('1e400');
    expect(cellValue('-1e400')).toBe('-1e400');
    expect(cellValue('9'.repeat(5000))).toBe('9'.repeat(5000));
    expect(cellValue('20.5')).toBe(20.5);
    expect(Object.is(cellValue('-0'), -0)).toBe(true);
  });
});

describe('bytes from outside must be UTF-8', () => {
  it('decodeUtf8 refuses every ill-formed sequence, naming its offset, and keeps a byte order mark', () => {
    const bad = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80]];
    for (const b of bad) {
      const bytes = Uint8Array.from([0x61, 0x62, ...b, 0x63]);
      expect(code(() => decodeUtf8(bytes, 'x'))).toBe('TPD_BAD_ARGUMENT: x: not UTF-8 (byte 2 starts no UTF-8 character)');
    }
    expect(decodeUtf8(Uint8Array.from([0xef, 0xbb, 0xbf, 0x61]), 'x')).toBe('\ufeffa');
  });

  it('the msgpack ingest reader refuses a str that is not UTF-8, a key twice, a key that is not a string; the archive reader still takes them', () => {
    const w = new MsgpackWriter();
    const cases: Array<[string, Uint8Array]> = [];
    // str of invalid UTF-8, of a WTF-8 surrogate, long (past the short-string path).
    for (const body of [[0x61, 0xff], [0xed, 0xa0, 0x80], [...new Array<number>(100).fill(0x61), 0xc0, 0x80]]) cases.push([`str ${body.length}`, Uint8Array.from([0xd9, body.length, ...body])]);
    w.reset().mapHeader(2);
    w.str('k');
    w.value(1);
    w.str('k');
    w.value(2);
    cases.push(['key twice', w.take()]);
    cases.push(['integer key', Uint8Array.from([0x81, 0x01, 0x02])]);
    for (const [name, bytes] of cases) {
      expect(code(() => decodeMsgpack(bytes, true)), name).toMatch(/^TPD_BAD_ARGUMENT: malformed msgpack: /);
      expect(code(() => new MsgpackReader(bytes).value()), name).toBe('accepted');
    }
    // A string starting with U+FEFF keeps it; a lone surrogate travels as ext 1 and is taken.
    for (const s of ['\ufeffx', 'a\ud800b', 'é'.repeat(40)]) expect(decodeMsgpack(w.reset() && (w.value(s), w.take()), true)).toBe(s);
  });
});

describe('Prometheus text: what Prometheus takes is taken, what it refuses is refused', () => {
  it("reads Go's float spellings and refuses Go's range errors", () => {
    const taken: Array<[string, number]> = [['Infinity', Infinity], ['+infinity', Infinity], ['-INFINITY', -Infinity], ['+Inf', Infinity], ['inf', Infinity], ['NaN', NaN], ['nAn', NaN], ['-0', -0], ['.5', 0.5], ['5.', 5], ['1e-400', 0], ['1.7976931348623157e308', Number.MAX_VALUE], ['162132490.6591326', 162132490.6591326], ['5e-324', 5e-324]];
    for (const [s, v] of taken) expect(Object.is(parseFloatText(s), v), s).toBe(true);
    for (const s of ['1e309', '-1e309', '1.8e308', `1${'0'.repeat(400)}`, '+nan', '-nan', 'infin', '0x10', '0x1p3', '1_0', 'Inf1']) expect(parseFloatText(s), s).toBeUndefined();
    const limits = { samplesMax: 100, lineBytesMax: 10_000 };
    expect(parseExposition('a 1\nm Infinity\n', limits)[1]?.value).toBe(Infinity);
    expect(code(() => parseExposition('a 1\nm 1e309\n', limits))).toMatch(/^TPD_BAD_ARGUMENT: exposition line 2: "1e309" is not a value/);
  });

  it('refuses a label twice in one series (and __name__ beside the name), which would drop one of its values', () => {
    const limits = { samplesMax: 100, lineBytesMax: 10_000 };
    expect(code(() => parseExposition('m{a="1",b="x",a="2"} 1\n', limits))).toMatch(/^TPD_BAD_ARGUMENT: exposition line 1: label a is not unique/);
    expect(code(() => parseExposition('m{__name__="x"} 1\n', limits))).toMatch(/label __name__ is not unique/);
    expect(parseExposition('m{a="1",b="2"} 1\n', limits)[0]?.labels).toEqual([['a', '1'], ['b', '2']]);
  });

  it('refuses a scrape whose sample or HELP line is not UTF-8, and reads free comments as they come', () => {
    const body = (help: number[], label: number[]): Buffer => Buffer.concat([Buffer.from('# HELP m h'), Buffer.from(help), Buffer.from('lp\nm{a="'), Buffer.from(label), Buffer.from('"} 1\n')]);
    expect(code(() => expositionText(body([0x65], [0x78, 0xff])))).toBe('TPD_BAD_ARGUMENT: exposition line 2: not UTF-8 (byte 6 starts no UTF-8 character)');
    expect(code(() => expositionText(body([0xe9], [0xc3, 0xa9])))).toBe('TPD_BAD_ARGUMENT: exposition line 1: not UTF-8 (byte 10 starts no UTF-8 character)');
    expect(expositionText(body([0x65], [0xc3, 0xa9]))).toBe('# HELP m help\nm{a="é"} 1\n');
    expect(expositionText(Buffer.concat([Buffer.from('# free h\xe9lp\n', 'latin1'), Buffer.from('m{a="é"} 1\n')]))).toBe('# free h\ufffdlp\nm{a="é"} 1\n');
  });
});

describe('a real server refuses, whole and recording nothing, what it cannot keep exactly', () => {
  let srv: Awaited<ReturnType<typeof recordingServer>>;
  beforeAll(async () => {
    srv = await recordingServer();
  });
  afterAll(async () => {
    await srv.close();
  });

  async function history(prefix: string): Promise<string> {
    const res = await request(`${srv.url}/api/v1/history?${new URLSearchParams({ glob: `${prefix}/**` }).toString()}`);
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(200);
    return text;
  }

  async function post(body: Uint8Array | string, type = 'application/x-ndjson'): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': type }, body });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  }

  it('HTTP push: a body that is not UTF-8 is refused 400 TPD_BAD_ARGUMENT, nothing of it recorded; the same text in UTF-8 is recorded exactly', async () => {
    for (const type of ['application/x-ndjson', 'application/json']) {
      const good = Buffer.from('{"ts":1763000000000000,"updates":{"/u8/a":"x\ufeffé"}}\n');
      const bad = Buffer.concat([Buffer.from('{"ts":1763000000000001,"updates":{"/u8/b":"x'), Buffer.from([0xe9]), Buffer.from('"}}\n')]);
      const a = await post(type === 'application/json' ? bad : Buffer.concat([good, bad]), type);
      expect(a.status, JSON.stringify(a.json)).toBe(400);
      expect((a.json.error as { code: string }).code).toBe('TPD_BAD_ARGUMENT');
      expect(await history('/u8')).toBe('');
    }
    const ok = await post(Buffer.from('{"ts":1763000000000002,"updates":{"/u8/a":"x\ufeffé"}}\n'));
    expect(ok.status).toBe(200);
    expect(JSON.parse(await history('/u8')).updates).toEqual({ '/u8/a': 'x\ufeffé' });
  });

  it('HTTP and WebSocket push: a line with a path, a key or "updates" twice is rejected and nothing of it recorded; the lines around it are', async () => {
    const ts = 1763000001000000;
    const lines = [
      `{"ts":${ts},"updates":{"/dup/ok1":1}}`,
      `{"ts":${ts + 1},"updates":{"/dup/a":1,"/dup/a":2}}`,
      `{"ts":${ts + 2},"updates":{"/dup/b":{"x":1,"x":2}}}`,
      `{"ts":${ts + 3},"updates":{"/dup/c":1},"updates":{"/dup/d":2}}`,
      `{"ts":${ts + 4},"updates":{"/dup/e":1e400}}`,
      `{"ts":${ts + 5},"updates":{"/dup/ok2":2}}`,
    ];
    const a = await post(lines.join('\n'));
    expect(a.json).toMatchObject({ accepted_lines: 2, rejected_lines: 4 });
    expect((a.json.rejected as Array<{ code: string }>).map((x) => x.code)).toEqual(['TPD_BAD_ARGUMENT', 'TPD_BAD_ARGUMENT', 'TPD_BAD_ARGUMENT', 'TPD_BAD_ARGUMENT']);
    const got = (await history('/dup')).split('\n').filter((l) => l !== '').map((l) => Object.keys((JSON.parse(l) as { updates: object }).updates));
    expect(got).toEqual([['/dup/ok1'], ['/dup/ok2']]);

    // A binary WebSocket message: a str that is not UTF-8, a value's key twice.
    const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/ingest/ws?ack=durable`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const answer = (m: Uint8Array): Promise<Record<string, unknown>> => new Promise((resolve) => {
      ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString()) as Record<string, unknown>));
      ws.send(m);
    });
    const w = new MsgpackWriter();
    const batch = (tsUs: number, path: string, writeValue: () => void): Uint8Array => {
      w.reset().mapHeader(2);
      w.str('ts');
      w.num(tsUs);
      w.str('updates');
      w.mapHeader(1);
      w.str(path);
      writeValue();
      return w.take();
    };
    const notUtf8 = batch(ts + 10, '/mp/a', () => {
      w.num(0);
    });
    // Put a str of invalid UTF-8 in the value's place (the writer only writes UTF-8).
    const bytes = Uint8Array.from([...notUtf8.subarray(0, notUtf8.length - 1), 0xa2, 0x61, 0xff]);
    const twice = batch(ts + 11, '/mp/b', () => {
      w.mapHeader(2);
      w.str('x');
      w.num(1);
      w.str('x');
      w.num(2);
    });
    for (const m of [bytes, twice]) expect(await answer(m), 'msgpack').toMatchObject({ accepted_lines: 0, rejected_lines: 1 });
    ws.close();
    expect(await history('/mp')).toBe('');
  });
});

describe('pollers record exactly what the upstream sent', () => {
  let upstream: Server;
  let bodies: Buffer[] = [];
  let url = '';
  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const body = bodies.shift() ?? Buffer.from('');
      res.writeHead(200, { 'content-type': req.url === '/metrics' ? 'text/plain; version=0.0.4' : 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('csv-matrix refuses (poll failed) a body that is not UTF-8 instead of recording U+FFFD in its cells', async () => {
    const t = await rig();
    bodies = [Buffer.concat([Buffer.from('id,name\nsw1,'), Buffer.from([0x61, 0xff]), Buffer.from('\n')]), Buffer.from('id,name\nsw1,a\n')];
    const src = t.add('csv-matrix', 'm', { url: `${url}/m`, interval: '20ms', backoff_initial: '10ms', backoff_max: '20ms', prefix: '/m', id_column: 'id' });
    const events: Array<{ ok: boolean; error?: Error }> = [];
    const two = new Promise<void>((resolve) => src.on('poll', (e: { ok: boolean; error?: Error }) => {
      if (events.push(e) === 2) resolve();
    }));
    src.start();
    await two;
    await t.close();
    expect(events.map((e) => e.ok)).toEqual([false, true]);
    expect(events[0]?.error?.message).toMatch(/not UTF-8/);
    expect(Object.fromEntries((await t.readBack()).flatMap((b) => b.updates))).toEqual({ '/m/sw1/name': 'a' });
  });

  it('http-json keeps integers past 2^53 as bigints and refuses (poll failed) a document JSON.parse would change', async () => {
    const t = await rig();
    bodies = [
      Buffer.from('{"flows":[{"bytes":18446744073709551617,"id":9007199254740993},{"bytes":-9223372036854775809}],"n":1152921504606846976}'),
      Buffer.from('{"flows":1,"flows":2}'),
      Buffer.concat([Buffer.from('{"s":"'), Buffer.from([0xff]), Buffer.from('"}')]),
      // Keys no path can hold as they are (NUL, a lone surrogate): a level of their own, percent-encoded.
      Buffer.from('{"k":{"a\\u0000b":1,"\\ud800":2,"%ED%A0%80":3}}'),
    ];
    const src = t.add('http-json', 'api', { url: `${url}/api`, interval: '20ms', backoff_initial: '10ms', backoff_max: '20ms', path: '/api', mode: 'leaves' });
    const events: Array<{ ok: boolean; error?: Error }> = [];
    const three = new Promise<void>((resolve) => src.on('poll', (e: { ok: boolean; error?: Error }) => {
      if (events.push(e) === 4) resolve();
    }));
    src.start();
    await three;
    await t.close();
    expect(events.slice(0, 4).map((e) => e.ok)).toEqual([true, false, false, true]);
    expect(events[1]?.error?.message).toMatch(/key "flows" is twice/);
    expect(events[2]?.error?.message).toMatch(/not UTF-8/);
    const batches = await t.readBack();
    const values = Object.fromEntries(batches.flatMap((b) => b.updates));
    expect(values).toEqual({
      '/api/flows/0/bytes': 18446744073709551617n, '/api/flows/0/id': 9007199254740993n, '/api/flows/1/bytes': -9223372036854775809n, '/api/n': 2 ** 60,
      '/api/k/a%00b': 1, '/api/k/%ED%A0%80': 2, '/api/k/%25ED%25A0%2580': 3,
    });
  });
});
