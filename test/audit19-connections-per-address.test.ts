/**
 * One client address cannot take the whole connection cap (server/connections-cap.ts,
 * SERVER_LIMITS.httpConnectionsPerAddressMax): before, 127.0.0.1 opening `cap` idle
 * connections left every other client's connections closed on arrival, nothing answered.
 * Now each address holds at most its share (an eighth of the cap here: 4 of 32), counted as
 * the connection arrives (WebSocket streams too); its connections past it are closed before
 * a byte is read, with one warning a minute, while 127.0.0.2 (a second source address on
 * loopback) is served; closing its connections gives its share back.
 */
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addressKey, perAddressCap } from '../server/connections-cap.js';
import { resolveConfig } from '../server/config.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { startServer, type TestServer } from './helpers/server.js';
import { recordingServer } from './helpers/recording-server.js';
import { until } from './helpers/until.js';

const CAP = 32;
const EACH = CAP / 8;
const T0 = 1_763_000_000_000_000;
let srv: TestServer;
let warnings: Array<Record<string, unknown>>;
const sockets: Socket[] = [];
const streams: WebSocket[] = [];
/** Requests from the second address. */
const other = new Agent({ localAddress: '127.0.0.2' });

beforeEach(async () => {
  warnings = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line) as Record<string, unknown>) });
  srv = await startServer([{ ts: T0, updates: [['/a', 1]] }], { connectionsMax: CAP, loggerInstance: logger });
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const w of streams.splice(0)) w.terminate();
  await srv.close();
});

function port(): number {
  return Number(new URL(srv.url).port);
}

/** An idle connection from `localAddress`, open once the client side connected. */
function open(localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: port(), host: '127.0.0.1', localAddress }, () => resolve(s));
    s.once('error', reject);
    sockets.push(s);
  });
}

/** GET /health on a new connection from `localAddress`: its status, or 'closed' when the server closed it unanswered. */
async function health(localAddress: string): Promise<number | 'closed'> {
  const s = await open(localAddress).catch(() => undefined);
  if (!s) return 'closed';
  return new Promise((resolve) => {
    let text = '';
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    s.once('close', () => resolve('closed'));
    s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  });
}

async function held(): Promise<number> {
  return new Promise((resolve, reject) => srv.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

describe('connections per client address', () => {
  it('take an eighth of the cap by default, at most httpConnectionsPerAddressMax; IPv6 counts by its /64', () => {
    expect(perAddressCap(CAP)).toBe(EACH);
    expect(perAddressCap(SERVER_LIMITS.httpConnectionsMax)).toBe(SERVER_LIMITS.httpConnectionsPerAddressMax);
    expect(perAddressCap(150)).toBe(18);
    expect(perAddressCap(3)).toBe(1);
    expect(addressKey('127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('2001:0db8:0000:0000:ffff:1:2:3')).toBe('2001:db8:0:0::/64');
    expect(addressKey('2001:db8:0:1::1')).toBe('2001:db8:0:1::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('64:ff9b::192.0.2.33')).toBe('64:ff9b:0:0::/64');
    expect(addressKey(undefined)).toBeUndefined();
  });

  it('an address opening the whole cap holds its share; another address is served; closing frees the share', async () => {
    const hostile = await Promise.all(Array.from({ length: CAP }, () => open('127.0.0.1').catch(() => undefined)));
    const kept = hostile.filter((s): s is Socket => s !== undefined);
    let closed = CAP - kept.length;
    for (const s of kept) s.once('close', () => closed++).on('error', () => undefined).resume();
    // Every one of them held by the server or closed by it.
    await until(async () => (await held()) + closed === CAP, 5000, 'the server to take or close every connection');
    // One more from the same address is closed unanswered; the other address is answered.
    expect(await health('127.0.0.1')).toBe('closed');
    expect(await health('127.0.0.2')).toBe(200);
    // The server kept EACH of the first address's connections and closed the rest as they arrived.
    expect(kept.filter((s) => s.readyState === 'open')).toHaveLength(EACH);
    const r = await request(`${srv.url}/api/v1/paths`, { dispatcher: other });
    expect(r.statusCode).toBe(200);
    await r.body.dump();
    // One warning for all the refusals (at most one a minute), naming the address and the limit.
    const refusals = warnings.filter((w) => String(w.msg).includes('httpConnectionsPerAddressMax'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ address: '127.0.0.1', perAddress: EACH });
    // The first address closes two of its connections: its share is back.
    const before = await held();
    const open1 = kept.filter((s) => s.readyState === 'open');
    open1[0]?.destroy();
    open1[1]?.destroy();
    await until(async () => (await held()) === before - 2, 5000, 'the server to see two connections closed');
    expect(await health('127.0.0.1')).toBe(200);
  });

  it('counts WebSocket streams: an address holding its share in session streams is refused more; another is served', async () => {
    const ids: string[] = [];
    for (let i = 0; i <= EACH; i++) {
      const res = await request(`${srv.url}/api/v1/sessions`, { dispatcher: other, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pos: 'end', state: 'pause' }) });
      expect(res.statusCode).toBe(201);
      ids.push(((await res.body.json()) as { id: string }).id);
    }
    const before = await held(); // the other address's connection
    for (let i = 0; i < EACH; i++) {
      const w = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/sessions/${ids[i] as string}/stream`, { localAddress: '127.0.0.1' });
      streams.push(w);
      await new Promise<void>((resolve, reject) => {
        w.once('open', () => resolve());
        w.once('error', reject);
      });
      w.on('error', () => undefined);
    }
    await until(async () => (await held()) === before + EACH, 5000, 'the server to hold the streams');
    expect(await health('127.0.0.1')).toBe('closed');
    const refused = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/sessions/${ids[EACH] as string}/stream`, { localAddress: '127.0.0.1' });
    const outcome = await new Promise<string>((resolve) => {
      refused.once('open', () => resolve('open'));
      refused.once('error', () => resolve('refused'));
    });
    expect(outcome).toBe('refused');
    expect(await health('127.0.0.2')).toBe(200);
    // A stream closed gives its place back.
    const streaming = await held();
    streams[0]?.terminate();
    await until(async () => (await held()) === streaming - 1, 5000, 'the server to see the stream closed');
    expect(await health('127.0.0.1')).toBe(200);
  });

  it('publish.max_connections_per_address sets it in a served config (at least 1)', async () => {
    expect(() => resolveConfig({ archive_directory: 'd', publish: { max_connections_per_address: 0 } })).toThrow(/publish\.max_connections_per_address: must be >= 1/);
    expect(resolveConfig({ archive_directory: 'd' }).publish.maxConnectionsPerAddress).toBeUndefined();
    const served = await recordingServer({ publish: { bind: '127.0.0.1:0', max_connections_per_address: 2 } });
    try {
      const u = new URL(served.url);
      const two = await Promise.all([0, 1].map(() => new Promise<Socket>((resolve) => {
        const s = connect({ port: Number(u.port), host: '127.0.0.1', localAddress: '127.0.0.3' }, () => resolve(s));
        sockets.push(s);
      })));
      expect(two).toHaveLength(2);
      await until(async () => new Promise<boolean>((resolve) => served.app.server.getConnections((_e, n) => resolve(n === 2))), 5000, 'the server to hold both');
      const third = connect({ port: Number(u.port), host: '127.0.0.1', localAddress: '127.0.0.3' });
      sockets.push(third);
      third.on('error', () => undefined).resume().write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      let answered = false;
      third.on('data', () => (answered = true));
      await new Promise((resolve) => third.once('close', resolve));
      expect(answered).toBe(false);
      const ok = await request(`${served.url}/health`, { dispatcher: other });
      expect(ok.statusCode).toBe(200);
      await ok.body.dump();
    } finally {
      for (const s of sockets.splice(0)) s.destroy();
      await served.close();
    }
  });
});
