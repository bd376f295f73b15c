/**
 * Lookups by a key that came from outside (a value tag's spelling, a shard's error code)
 * must find only their table's own entries: a plain object's `[key]` or `key in` also finds
 * Object.prototype's members (`constructor`, `__proto__`, `toString`, ...). Each case here
 * was taken as a valid entry before: `{"$num": "constructor"}` pushed was the function
 * Object, a shard's 400 with code "constructor" became an error without an HTTP status.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { openShard } from '../server/cluster/fanout.js';
import type { ShardDirectory } from '../server/cluster/directory.js';
import { recordingServer } from './helpers/recording-server.js';

const MEMBERS = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__'];

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

describe('keys from outside find only their table\'s own entries', () => {
  it('push: a $num tag spelled like an Object.prototype member is refused and nothing is recorded', async () => {
    const srv = await recordingServer();
    try {
      for (const m of MEMBERS) {
        const r = await fetch(`${srv.url}/api/v1/ingest?source=push`, {
          method: 'POST', headers: { 'content-type': 'application/x-ndjson' },
          body: `${JSON.stringify({ ts: 1_700_000_000_000_000, updates: { '/v/a': { $num: m } } })}\n`,
        });
        const body = await r.text();
        expect(r.status, `${m}: ${body}`).toBe(400);
        expect(body, m).toContain('$num');
      }
      const paths = (await (await fetch(`${srv.url}/api/v1/paths`)).json()) as { paths: string[] };
      expect(paths.paths).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it('a shard answering 4xx with an error code named like an Object.prototype member is a failing shard, not that error', async () => {
    for (const m of MEMBERS) {
      const fake = createServer((_req, res) => {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: m, message: 'x' } }));
      });
      servers.push(fake);
      await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', () => resolve()));
      const dir: ShardDirectory = { self: 'me', shards: () => Promise.resolve([]) };
      const err = await openShard(dir, { url: `http://127.0.0.1:${(fake.address() as AddressInfo).port}` }, '/api/v1/state').then(() => undefined, (e: unknown) => e);
      expect(err, m).toBeInstanceOf(Error);
      expect(isTapedeckError(err), `${m}: ${String(err)}`).toBe(false);
      expect((err as { code?: string }).code, m).toBe('HTTP 400');
    }
    // Our own codes still come through as the client's error.
    const real = createServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'TPD_BAD_ARGUMENT', message: 'bad glob' } }));
    });
    servers.push(real);
    await new Promise<void>((resolve) => real.listen(0, '127.0.0.1', () => resolve()));
    const err = await openShard({ self: 'me', shards: () => Promise.resolve([]) }, { url: `http://127.0.0.1:${(real.address() as AddressInfo).port}` }, '/api/v1/state').then(() => undefined, (e: unknown) => e);
    expect(isTapedeckError(err) && err.code === 'TPD_BAD_ARGUMENT' && err.status === 400 && err.message === 'bad glob').toBe(true);
  });
});
