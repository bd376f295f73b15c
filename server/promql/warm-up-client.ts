/**
 * How the query path's warm-up (prepare.ts) sends its requests: over TCP connections to the
 * server's own listener, as a user's request arrives (the accepted socket, node:http's parser,
 * the form body read from the socket, fastify's hooks with a real remote address, the reply
 * written to the socket, keep-alive), so that V8 has compiled that path too before /ready
 * says ready; fastify's inject runs none of it. In process (inject) instead when the server
 * does not listen on a TCP address within promqlWarmUpListenWaitMs, or the first loopback
 * connection fails: the client's description (in /ready's detail) says which, and why.
 */
import { Agent, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

export interface WarmUpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface WarmUpClient {
  /** Its status and body; rejects when no answer came (a connection lost, or none within timeoutMs). */
  send(r: WarmUpRequest, timeoutMs: number): Promise<{ status: number; body: string }>;
  /** The next request opens a new connection (a user's first request opens one). */
  reconnect(): void;
  /** Closes its connections. */
  close(): void;
  /** How it sent, for /ready's detail: `over 4 loopback connections to 127.0.0.1:8080`, `in process (inject: ...)`. */
  describe(): string;
}

/** A request given `timeoutMs` got no answer in that time. */
export class NoAnswerInTime extends Error {}

/** A client of `app`: over loopback once its server listens on TCP (waiting at most waitMs), else inject. */
export async function warmUpClient(app: FastifyInstance, waitMs: number): Promise<WarmUpClient> {
  const address = await tcpAddress(app.server, waitMs);
  return typeof address === 'string' ? injectClient(app, address) : loopbackClient(app, address);
}

/** The server's TCP address once it listens, or why there is none to connect to. */
async function tcpAddress(server: Server, waitMs: number): Promise<AddressInfo | string> {
  if (!server.listening) {
    const listening = await new Promise<boolean>((resolve) => {
      const done = (v: boolean): void => {
        clearTimeout(timer);
        server.off('listening', onListening);
        resolve(v);
      };
      const onListening = (): void => done(true);
      const timer = setTimeout(() => done(false), Math.max(0, waitMs));
      timer.unref();
      server.once('listening', onListening);
    });
    if (!listening) return 'not listening within promqlWarmUpListenWaitMs';
  }
  const a = server.address();
  return a === null || typeof a === 'string' ? 'not listening on a TCP address' : a;
}

function injectClient(app: FastifyInstance, why: string): WarmUpClient {
  return {
    send: async (r) => {
      const res = await app.inject({ method: r.method, url: r.url, headers: r.headers, ...(r.body === undefined ? {} : { payload: r.body }) });
      return { status: res.statusCode, body: res.body };
    },
    reconnect: () => undefined,
    close: () => undefined,
    describe: () => `in process (inject: ${why})`,
  };
}

/** A wildcard address is reached through the loopback of its family. */
function loopbackHost(a: AddressInfo): string {
  if (a.address === '0.0.0.0') return '127.0.0.1';
  if (a.address === '::') return '::1';
  return a.address;
}

function loopbackClient(app: FastifyInstance, a: AddressInfo): WarmUpClient {
  const host = loopbackHost(a);
  const where = `${a.family === 'IPv6' ? `[${host}]` : host}:${a.port}`;
  let agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let connections = 0;
  let answered = 0;
  // After a first connection that failed: every request in process, saying why.
  let fallback: WarmUpClient | undefined;
  const viaSocket = (r: WarmUpRequest, timeoutMs: number): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
    const headers = r.body === undefined ? r.headers : { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) };
    const req = request({ host, port: a.port, method: r.method, path: r.url, headers, agent });
    const timer = setTimeout(() => req.destroy(new NoAnswerInTime(`no answer within ${Math.round(timeoutMs)} ms`)), Math.max(1, timeoutMs));
    req.once('socket', () => {
      if (!req.reusedSocket) connections++;
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        clearTimeout(timer);
        answered++;
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
      });
      res.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(r.body);
  });
  return {
    send: async (r, timeoutMs) => {
      if (fallback) return fallback.send(r, timeoutMs);
      try {
        return await viaSocket(r, timeoutMs);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Only a connection that never answered (refused, unreachable): anything later is the warm-up's failure.
        if (answered > 0 || code === undefined) throw err;
        fallback = injectClient(app, `a loopback connection to ${where} failed: ${code}`);
        return fallback.send(r, timeoutMs);
      }
    },
    reconnect: () => {
      agent.destroy();
      agent = new Agent({ keepAlive: true, maxSockets: 1 });
    },
    close: () => agent.destroy(),
    describe: () => fallback?.describe() ?? `over ${connections} loopback connection${connections === 1 ? '' : 's'} to ${where}`,
  };
}
