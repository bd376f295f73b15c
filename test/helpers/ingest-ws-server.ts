/**
 * A real server (server/app.ts buildServer on a free port) with one push source over a fresh
 * archive, for tests of the push-ingest WebSocket under the stream bounds they set; and a
 * WebSocket opened to it.
 */
import WebSocket from 'ws';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { Recorder } from '../../server/recorder.js';
import type { StreamLimits } from '../../server/routes/ws-liveness.js';
import { PushSource } from '../../server/sources/push.js';
import { tmpDir } from './tmp.js';

export interface IngestWsServer {
  app: FastifyInstance;
  /** The ingest WebSocket's URL (ws://…/api/v1/ingest/ws). */
  url: string;
  archive: Archive;
  /** Closes the server, then the archive. */
  close(): Promise<void>;
}

/** The server, its archive in a new temporary directory named `prefix`…, flushed at once (flushIntervalMs 0). */
export async function ingestWsServer(prefix: string, streamLimits: Partial<StreamLimits>): Promise<IngestWsServer> {
  const archive = await Archive.open(await tmpDir(prefix), { flushIntervalMs: 0 });
  const recorder = await Recorder.open(archive);
  const push = new PushSource({ name: 'push', sink: recorder.sink('push'), log: pino({ level: 'silent' }), defaultPollIntervalMs: 1000 });
  const app = await buildServer({ archive, recorder, sources: [push], logger: false, streamLimits });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/api/v1/ingest/ws`;
  return {
    app,
    url,
    archive,
    async close() {
      await app.close();
      await archive.close();
    },
  };
}

/** A WebSocket to `url` once it is open (`autoPong: false`: it answers no ping). */
export function openWs(url: string, opts: { autoPong?: boolean } = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, opts);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
