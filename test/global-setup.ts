/**
 * Once per vitest run, in vitest's own process:
 * - builds dist/ from the sources (test/helpers/build-dist.ts), so the child processes the
 *   tests spawn (`node bin/tapedeck.js`, dist/test/helpers/*-child.js) run the code under
 *   test, never an older build; again before each watch-mode rerun;
 * - serves the shared peers: one Kafka broker and one Redis for the whole run, started on the
 *   first request (a run without Kafka tests never starts the JVM) and removed at the end.
 *   Test files reach them through test/helpers/peers.ts, which asks this process over a
 *   loopback HTTP endpoint whose address it gets by inject('peersUrl').
 * Tests that stop, kill or restart a broker or a Redis on purpose start a private one.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { buildDist } from './helpers/build-dist.js';
import { startKafka, type KafkaBroker } from './helpers/kafka.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://127.0.0.1:PORT of the shared-peers endpoint (GET /kafka, GET /redis). */
    peersUrl: string;
    /** When dist/ was last built for this run (ms since the epoch). */
    distBuiltAtMs: number;
  }
}

interface Peers {
  kafka?: Promise<KafkaBroker>;
  redis?: Promise<RedisServer>;
}

/** A start that failed is forgotten, so that the next test file tries again rather than fail on the same error. */
function retryable<T>(start: Promise<T>, forget: () => void): Promise<T> {
  return start.catch((err: unknown) => {
    forget();
    throw err;
  });
}

async function answer(peers: Peers, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    let body: unknown;
    if (req.url === '/kafka') body = { brokers: (await (peers.kafka ??= retryable(startKafka(), () => delete peers.kafka))).brokers };
    else if (req.url === '/redis') body = { url: (await (peers.redis ??= retryable(startRedis(), () => delete peers.redis))).url };
    else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(err instanceof Error ? err.message : String(err));
  }
}

async function build(project: TestProject): Promise<void> {
  const t0 = Date.now();
  const { files, written } = await buildDist();
  if (written > 0) console.log(`global-setup: dist/ built (${written} of ${files * 2} files changed) in ${Date.now() - t0} ms`);
  project.provide('distBuiltAtMs', Date.now());
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await build(project);
  project.onTestsRerun(() => build(project));
  const peers: Peers = {};
  const server = createServer((req, res) => void answer(peers, req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  project.provide('peersUrl', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // A peer that failed to start has nothing to remove.
    await Promise.all([
      peers.kafka?.then((k) => k.destroy(), () => undefined),
      peers.redis?.then((r) => r.destroy(), () => undefined),
    ]);
  };
}
