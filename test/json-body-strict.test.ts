/**
 * JSON bodies of every route are read strictly (server/routes/json-body.ts): a key twice in
 * one object, bytes that are not UTF-8, an integer a double cannot hold and a literal past
 * the largest double are refused with 400 and a stable code, where JSON.parse had kept the
 * last key (`POST /api/v1/sessions {"start": A, "start": B}` made a session at B), replaced
 * bytes with U+FFFD, or rounded the number, in silence. Ordinary bodies are taken as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startServer, type TestServer } from './helpers/server.js';

const T0 = 1_763_000_000_000_000;
let srv: TestServer;

beforeAll(async () => {
  srv = await startServer(Array.from({ length: 20 }, (_v, i) => ({ ts: T0 + i * 1_000_000, updates: [['/a', i]] })));
});
afterAll(async () => {
  await srv.close();
});

async function send(method: 'POST' | 'PATCH' | 'PUT', path: string, body: string | Buffer): Promise<{ status: number; json: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  const res = await request(`${srv.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body });
  return { status: res.statusCode, json: (await res.body.json()) as { error?: { code: string; message: string } } & Record<string, unknown> };
}

describe('JSON bodies', () => {
  it('a key twice, bad UTF-8, an inexact integer or a number past the largest double is refused, and no session is made', async () => {
    const before = srv.app.sessions.size;
    const refused: Array<[string | Buffer, RegExp]> = [
      [`{"start": ${T0}, "start": ${T0 + 5_000_000}}`, /twice|duplicate/i],
      [`{"start": ${T0}, "speed": 1, "speed": 10}`, /twice|duplicate/i],
      [Buffer.concat([Buffer.from('{"filter": ["/a'), Buffer.from([0xff, 0xfe]), Buffer.from('"]}')]), /UTF-8/],
      ['{"start": 1763000000000000123}', /bigint|double|exact/i],
      ['{"speed": 1e400}', /double|Infinity|largest/i],
      ['{"start": ', /not JSON/],
      ['', /not JSON/],
    ];
    for (const [body, message] of refused) {
      const r = await send('POST', '/api/v1/sessions', body);
      expect(r.status, String(body)).toBe(400);
      expect(r.json.error?.code, String(body)).toMatch(/^TPD_BAD_(ARGUMENT|REQUEST)$/);
      expect(r.json.error?.message, String(body)).toMatch(message);
    }
    expect(srv.app.sessions.size).toBe(before);
  });

  it('ordinary bodies are taken as before, and a PATCH with a key twice changes nothing', async () => {
    const made = await send('POST', '/api/v1/sessions', JSON.stringify({ start: T0, speed: 2 }));
    expect(made.status).toBe(201);
    const id = made.json.id as string;
    const patched = await send('PATCH', `/api/v1/sessions/${id}`, JSON.stringify({ speed: 4 }));
    expect(patched.status).toBe(200);
    expect((patched.json.controls as { speed: number }).speed).toBe(4);
    const twice = await send('PATCH', `/api/v1/sessions/${id}`, '{"speed": 8, "speed": 16}');
    expect(twice.status).toBe(400);
    const after = await request(`${srv.url}/api/v1/sessions/${id}`);
    expect(((await after.body.json()) as { controls: { speed: number } }).controls.speed).toBe(4);
  });

  it('a charset other than UTF-8 is refused with 415, here and on the ingest route; utf-8 in any spelling is taken', async () => {
    for (const ct of ['application/json; charset=latin1', 'application/json;charset="ISO-8859-1"', 'application/json; CHARSET=utf-16']) {
      const r = await request(`${srv.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': ct }, body: '{"speed": 2}' });
      expect(r.statusCode, ct).toBe(415);
      expect(((await r.body.json()) as { error: { code: string } }).error.code, ct).toBe('TPD_UNSUPPORTED_MEDIA_TYPE');
      const i = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': ct.replace('application/json', 'application/x-ndjson') }, body: '{"updates": {"/b": "\u00c3\u00a9"}}' });
      expect(i.statusCode, ct).toBe(415);
      await i.body.dump();
    }
    for (const ct of ['application/json; charset=utf-8', 'application/json; charset=UTF8', 'application/json; charset="utf-8"']) {
      const r = await request(`${srv.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': ct }, body: '{"speed": 2}' });
      expect(r.statusCode, ct).toBe(201);
      await r.body.dump();
    }
  });

  it('a body that starts with a byte order mark is read without it, as before the strict reader (RFC 8259 8.1); one inside a string stays', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const made = await send('POST', '/api/v1/sessions', Buffer.concat([bom, Buffer.from(JSON.stringify({ start: T0, speed: 2, filter: ['/a'] }))]));
    expect(made.status).toBe(201);
    expect((made.json.controls as { speed: number }).speed).toBe(2);
    // A mark anywhere but first is not JSON's to drop: in a string it is part of the value; between tokens it is refused.
    const inside = await send('POST', '/api/v1/sessions', Buffer.concat([Buffer.from('{"filter": ["/a'), bom, Buffer.from('"]}')]));
    expect(inside.status).toBe(201);
    expect(inside.json.filter).toEqual(['/a\ufeff']);
    const between = await send('POST', '/api/v1/sessions', Buffer.concat([Buffer.from('{"speed":'), bom, Buffer.from('2}')]));
    expect(between.status).toBe(400);
    expect(await send('POST', '/api/v1/sessions', Buffer.concat([bom, bom, Buffer.from('{"speed": 2}')]))).toMatchObject({ status: 400 });
  });

  it('pushed JSON still goes through the ingest route\'s own reader', async () => {
    const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"updates": {"/b": 1}}' });
    // No push source in this server: the route answers, with its own code, not the app's JSON reader's.
    expect(res.statusCode).toBe(404);
    expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('TPD_NO_PUSH_SOURCE');
  });
});
