/**
 * A real redis-server (Debian's) through scripts/redis.sh, on a free loopback port. Tests use
 * the run's shared one (sharedRedis() in test/helpers/peers.ts, keys apart by a unique
 * cluster name) and start a private one with startRedis() only to stop or restart it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = new URL('../../scripts/redis.sh', import.meta.url).pathname;

/** A Redis to talk to: the shared one cannot be stopped from a test file. */
export interface RedisPeer {
  /** redis://127.0.0.1:PORT */
  url: string;
}

export interface RedisServer extends RedisPeer {
  port: number;
  stop(): Promise<void>;
  kill(): Promise<void>;
  /** Starts again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-redis-'));
  const start = async (): Promise<string> => (await run('bash', [script, 'start', dir], { timeout: 30_000 })).stdout.trim();
  const addr = await start();
  return {
    url: `redis://${addr}`,
    port: Number(addr.split(':')[1]),
    stop: async () => void await run('bash', [script, 'stop', dir]),
    kill: async () => void await run('bash', [script, 'kill', dir]),
    restart: async () => void await start(),
    destroy: async () => {
      await run('bash', [script, 'kill', dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
