/**
 * Real upstreams for the recording tests: small HTTP servers on port 0 whose answers a test
 * scripts (including misbehaviour: 500s, hangs, malformed CSV), a recorder over a fresh
 * archive, and waiting on events instead of sleeping.
 */
import { readArchive } from './replay.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { Archive, type OpenOptions } from '../../storage/index.js';
import { Recorder } from '../../server/recorder.js';
import { SOURCE_TYPES } from '../../server/sources/registry.js';
import type { Source } from '../../server/sources/source.js';
import type { Batch } from '../../protocol/value.js';
import { tmpDir } from './tmp.js';

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (the client's timeout must fire); the socket is destroyed at close. */
  hang?: boolean;
}

export interface Upstream {
  url: string;
  /** Requests received so far, with their headers. */
  requests: IncomingMessage['headers'][];
  /** Replies given with status 200, in order. */
  served: Reply[];
  close(): Promise<void>;
}

/** An HTTP server answering each request with `script(n, req)` (n counts from 0). */
export async function upstream(script: (n: number, req: IncomingMessage) => Reply): Promise<Upstream> {
  const requests: IncomingMessage['headers'][] = [];
  const served: Reply[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const n = requests.length;
    requests.push(req.headers);
    const r = script(n, req);
    if (r.hang) return;
    const status = r.status ?? 200;
    if (status === 200) served.push(r);
    res.writeHead(status, r.headers ?? {}).end(r.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    served,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves with the first `event` for which `pred` holds; rejects after `timeoutMs`. */
export function waitFor<T = unknown>(em: EventEmitter, event: string, pred: (x: T) => boolean = () => true, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      em.off(event, on);
      reject(new Error(`timed out waiting for ${event}`));
    }, timeoutMs);
    function on(x: T): void {
      if (!pred(x)) return;
      clearTimeout(t);
      em.off(event, on);
      resolve(x);
    }
    em.on(event, on);
  });
}

export interface Rig {
  dir: string;
  archive: Archive;
  recorder: Recorder;
  sources: Source[];
  add(type: string, name: string, options: Record<string, unknown>): Source;
  /** Stops the sources and closes the archive (flushing it). */
  close(): Promise<void>;
  /** Every batch committed to the archive, read back from disk after close(). */
  readBack(): Promise<Batch[]>;
}

const silent = pino({ level: 'silent' });

/** A recorder over a fresh archive, plus sources created from config-like entries. */
export async function rig(spec: string[] = ['/**'], storage: OpenOptions = {}): Promise<Rig> {
  const dir = await tmpDir('tapedeck-rec-');
  const archive = await Archive.open(dir, { flushIntervalMs: 0, ...storage });
  const recorder = await Recorder.open(archive, { spec });
  const sources: Source[] = [];
  let closed = false;
  return {
    dir,
    archive,
    recorder,
    sources,
    add(type, name, options) {
      const s = (SOURCE_TYPES[type] as NonNullable<(typeof SOURCE_TYPES)[string]>).create(options, {
        name, sink: recorder.sink(name), log: silent, defaultPollIntervalMs: 1000,
      });
      sources.push(s);
      return s;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(sources.map((s) => s.stop()));
      await archive.close();
    },
    readBack: () => readArchive(dir),
  };
}
