/**
 * The server holds at most a capped number of connections (server/connections-cap.ts): past
 * the cap a connection is closed as it arrives, so idle clients cannot take the file
 * descriptors the archive writes with (400 idle connections under `ulimit -n 300` had made
 * the coverage journal fail with EMFILE). The cap follows the open-file limit: checked in a
 * child process started under `ulimit -n 300`.
 */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { connectionsCap, softOpenFilesLimit } from '../server/connections-cap.js';
import { childArgs } from './helpers/built.js';
import { startServer, type TestServer } from './helpers/server.js';

const CAP = 8;
let srv: TestServer;

beforeAll(async () => {
  // Each address may hold them all here: this file is about the total (audit19-connections-per-address: the share).
  srv = await startServer([{ ts: 1_763_000_000_000_000, updates: [['/a', 1]] }], { connectionsMax: CAP, connectionsPerAddressMax: CAP });
});
afterAll(async () => {
  await srv.close();
});

function open(url: string): Promise<Socket> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves 'closed' when the server ends or resets the socket within `ms`, else 'open'. */
function closedWithin(s: Socket, ms: number): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('open'), ms);
    const done = (): void => {
      clearTimeout(t);
      resolve('closed');
    };
    s.once('close', done);
    s.once('end', done);
    s.once('error', done);
    s.resume();
  });
}

describe('connections cap', () => {
  it('reads the soft open-file limit and takes half of it, at most httpConnectionsMax', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            300                  1048576              files\n';
    expect(softOpenFilesLimit(text)).toBe(300);
    expect(softOpenFilesLimit(text.replace('300 ', 'unlimited '))).toBeUndefined();
    expect(softOpenFilesLimit('')).toBeUndefined();
    expect(connectionsCap(300, 8192, 0.5)).toBe(150);
    expect(connectionsCap(1_048_576, 8192, 0.5)).toBe(8192);
    expect(connectionsCap(undefined, 8192, 0.5)).toBe(8192);
    expect(connectionsCap(1, 8192, 0.5)).toBe(1);
  });

  it('past the cap a connection is closed on arrival; once some leave, requests are answered again', async () => {
    const idle = await Promise.all(Array.from({ length: CAP }, () => open(srv.url)));
    // Give the server time to count them all.
    await new Promise((r) => setTimeout(r, 200));
    const extra = await open(srv.url).catch(() => undefined);
    if (extra) {
      extra.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await closedWithin(extra, 3_000)).toBe('closed');
      extra.destroy();
    }
    for (const s of idle.splice(0, CAP / 2)) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const res = await request(`${srv.url}/health`);
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    for (const s of idle) s.destroy();
  });

  it('a server process under ulimit -n 300 caps itself at 150 connections', async () => {
    const script = `ulimit -n 300 && exec "${process.execPath}" ${childArgs('connections-cap-child').map((a) => `"${a}"`).join(' ')}`;
    const { stdout } = await promisify(execFile)('bash', ['-c', script], { timeout: 30_000 });
    expect(JSON.parse(stdout.trim())).toEqual({ openFiles: 300, cap: 150 });
  });
});
