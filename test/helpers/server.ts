/**
 * A real Tapedeck server on a free port over a real archive, and a WebSocket client that
 * queues frames so tests can wait for the one they expect.
 */
import WebSocket from 'ws';
import { decodeMsgpack as unpack } from '../../protocol/value-msgpack.js';
import type { FastifyInstance } from 'fastify';
import { Archive, type OpenOptions } from '../../storage/index.js';
import { buildServer, type ServerOptions } from '../../server/app.js';
import { reviveValue } from '../../protocol/frames.js';
import type { Batch, Value } from '../../protocol/value.js';
import { tmpDir } from './tmp.js';

export interface TestServer {
  app: FastifyInstance;
  archive: Archive;
  url: string;
  close(): Promise<void>;
}

export async function startServer(batches: Batch[], opts: Partial<ServerOptions> = {}, storage: OpenOptions = {}): Promise<TestServer> {
  const dir = await tmpDir('tapedeck-srv-');
  const archive = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024, ...storage });
  for (const b of batches) archive.writer!.append(b.updates, b.ts);
  await archive.writer!.flush();
  const app = await buildServer({ archive, ...opts });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as { port: number };
  return {
    app,
    archive,
    url: `http://127.0.0.1:${addr.port}`,
    async close() {
      await app.close();
      await archive.close();
    },
  };
}

export type Frame = { type: string; [k: string]: unknown };

export class TestWs {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  private paths = new Map<number, string>();

  private constructor(readonly ws: WebSocket, readonly format: 'json' | 'msgpack') {
    ws.on('message', (data: Buffer, binary: boolean) => {
      const f = (binary ? unpack(data) : JSON.parse(data.toString())) as Frame;
      if (f.type === 'paths') {
        for (const [id, p] of f.paths as Array<[number, string]>) this.paths.set(id, p);
        return;
      }
      this.frames.push(this.normalize(f));
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(url: string, format: 'json' | 'msgpack' = 'json'): Promise<TestWs> {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + (format === 'msgpack' ? '?format=msgpack' : ''));
    const t = new TestWs(ws, format);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(t));
      ws.once('error', reject);
    });
  }

  /** Frames in one shape whatever the wire format: paths as strings, values revived. */
  private normalize(f: Frame): Frame {
    const fix = (pairs: Array<[string | number, unknown]>): Array<[string, Value]> =>
      pairs.map(([k, v]) => [typeof k === 'number' ? (this.paths.get(k) as string) : k, this.format === 'json' ? reviveValue(v) : (v as Value)]);
    if (f.type === 'batch') return { ...f, updates: fix(f.updates as Array<[string, unknown]>) };
    if (f.type === 'batches') {
      return { ...f, batches: (f.batches as Array<{ ts: number; updates: Array<[string, unknown]> }>).map((b) => ({ ts: b.ts, updates: fix(b.updates) })) };
    }
    if (f.type === 'state') {
      const pairs = Array.isArray(f.values) ? (f.values as Array<[number, unknown]>) : Object.entries(f.values as Record<string, unknown>);
      return { ...f, values: Object.fromEntries(fix(pairs)) };
    }
    return f;
  }

  send(obj: unknown): void {
    this.ws.send(JSON.stringify(obj));
  }

  /** Removes and returns the first frame matching `pred`, waiting up to `timeoutMs`. */
  async next(pred: (f: Frame) => boolean = () => true, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0] as Frame;
      if (this.closed) throw new Error('socket closed while waiting for a frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; have: ${this.frames.map((f) => f.type).join(',')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private spare: Batch[] = [];

  /** Collects batches (from batch and batches frames) until `n` arrived; extras wait for the next call. */
  async batches(n: number, timeoutMs = 10_000): Promise<Batch[]> {
    const out: Batch[] = this.spare.splice(0, n);
    while (out.length < n) {
      const f = await this.next((x) => x.type === 'batch' || x.type === 'batches', timeoutMs);
      if (f.type === 'batch') out.push({ ts: f.ts as number, updates: f.updates as Batch['updates'] });
      else out.push(...(f.batches as Batch[]));
    }
    this.spare.push(...out.splice(n));
    return out;
  }

  close(): void {
    this.ws.close();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests poke at arbitrary JSON bodies
export async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A request with an optional bearer token; JSON bodies as JSON, strings as NDJSON; text answers kept as text. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests poke at arbitrary JSON bodies
export async function authedCall(base: string, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = typeof body === 'string' ? 'application/x-ndjson' : 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // text bodies (metrics, history)
  }
  return { status: res.status, body: json };
}
