/**
 * An answer whose client never reads it cannot hold the connection and the answer's memory
 * for ever. Before, a client that asked a large /api/v1/state (or any answer past what the
 * kernels' buffers take) and read nothing kept it in the server's socket buffer with no
 * timeout at all: Node starts the keep-alive timeout only once every byte is taken, and
 * twenty such clients of a 30 MB state held 1.1 GB of the server's memory, and their
 * connections, for as long as they liked. Now what is left of a complete answer must be
 * taken within httpAnswerStallMs plus its bytes at httpReadBytesPerSMin, or the connection
 * is cut (server/app.ts cutWhenUnread); a client that reads, even slowly within that rate,
 * gets its whole answer. /health answers throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import type { Batch, Update } from '../protocol/value.js';
import { startServer, type TestServer } from './helpers/server.js';

/** 24 paths of 1 MiB strings: a /state answer of about 24 MiB, far past loopback's socket buffers. */
const PATHS = 24;
const VALUE_CHARS = 1024 * 1024;
const STALL_MS = 1_000;
const READ_BYTES_PER_S_MIN = 8 * 1024 * 1024;
/** The answer's deadline (STALL_MS + 24 MiB at 8 MiB/s = 4 s), with room for a loaded machine; the cut must come well before. */
const CUT_WITHIN_MS = 15_000;
/**
 * /health must answer at all within this: not a timing target (the server runs in this
 * process, which builds and writes the large answers too, on a machine shared with others).
 */
const HEALTH_ANSWER_MS = 15_000;

const batches: Batch[] = [{ ts: 1_700_000_000_000_000, updates: Array.from({ length: PATHS }, (_, i) => [`/big/${i}`, String.fromCharCode(97 + i).repeat(VALUE_CHARS)] as Update) }];

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(): Promise<TestServer> {
  server = await startServer(batches, { httpTimeouts: { httpAnswerStallMs: STALL_MS, httpReadBytesPerSMin: READ_BYTES_PER_S_MIN } });
  return server;
}

async function healthMs(s: TestServer): Promise<number> {
  const t0 = Date.now();
  const res = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) }).catch(() => undefined);
  return res?.status === 200 ? Date.now() - t0 : Infinity;
}

interface RawAnswer {
  /** Resolves once the server's side of the connection is closed, or with 'still open' past the patience. */
  closed: Promise<'closed' | 'still open'>;
  /** Reads from now on, `bytesPerTick` bytes every 50 ms (Infinity: all at once). */
  read(bytesPerTick?: number): void;
  received(): Buffer;
  /** Whether the client's side has seen the connection close. */
  socketClosed(): boolean;
  destroy(): void;
}

/**
 * Sends `requests` (raw HTTP) on one connection of `s` and reads nothing until told. Whether
 * the server closed it is seen on the server's side: a client that reads nothing does not
 * see the close behind the bytes it has not read.
 */
function rawRequest(s: TestServer, requests: string, patienceMs: number): RawAnswer {
  const { port } = new URL(s.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  const serverSide = new Promise<net.Socket>((resolve) => {
    const seen = (conn: net.Socket): void => {
      if (conn.remotePort !== socket.localPort) return;
      s.app.server.off('connection', seen);
      resolve(conn);
    };
    s.app.server.on('connection', seen);
  });
  socket.write(requests);
  socket.pause();
  const chunks: Buffer[] = [];
  let throttle: NodeJS.Timeout | undefined;
  socket.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<'closed' | 'still open'>((resolve) => {
    const patience = setTimeout(() => resolve('still open'), patienceMs);
    void serverSide.then((conn) => {
      const done = (): void => {
        clearTimeout(patience);
        resolve('closed');
      };
      if (conn.destroyed) done();
      else conn.once('close', done);
    });
  });
  socket.on('close', () => clearInterval(throttle));
  return {
    closed,
    read(bytesPerTick = Infinity) {
      if (bytesPerTick === Infinity) return void socket.resume();
      // Resumed for one chunk every tick: about a socket read (64 KiB) a tick at most.
      let budget = 0;
      socket.on('data', (d: Buffer) => {
        budget -= d.length;
        if (budget <= 0) socket.pause();
      });
      throttle = setInterval(() => {
        budget = bytesPerTick;
        socket.resume();
      }, 50);
    },
    received: () => Buffer.concat(chunks),
    socketClosed: () => socket.destroyed,
    destroy: () => socket.destroy(),
  };
}

const GET_STATE = 'GET /api/v1/state?glob=/big/** HTTP/1.1\r\nHost: x\r\n\r\n';

describe('an answer its client does not read', () => {
  it('is cut once it has waited httpAnswerStallMs plus its bytes at httpReadBytesPerSMin; /health answers meanwhile', async () => {
    const s = await start();
    // Four connections asking the large state, one of them pipelining three requests.
    const stuck = [rawRequest(s, GET_STATE, CUT_WITHIN_MS), rawRequest(s, GET_STATE, CUT_WITHIN_MS), rawRequest(s, GET_STATE, CUT_WITHIN_MS), rawRequest(s, GET_STATE.repeat(3), CUT_WITHIN_MS)];
    const t0 = Date.now();
    let slowestHealth = 0;
    const probes = setInterval(() => void healthMs(s).then((ms) => (slowestHealth = Math.max(slowestHealth, ms))), 250);
    const outcomes = await Promise.all(stuck.map((a) => a.closed));
    clearInterval(probes);
    const took = Date.now() - t0;
    expect(outcomes, 'every unread connection cut by the server').not.toContain('still open');
    // Not before the stall: a client has that long before its answer's own reading time.
    expect(took).toBeGreaterThanOrEqual(STALL_MS);
    expect(slowestHealth).toBeLessThan(HEALTH_ANSWER_MS);
    expect(await healthMs(s)).toBeLessThan(HEALTH_ANSWER_MS);
    // A client reading again finds its answer cut short.
    const again = stuck[0] as RawAnswer;
    again.read();
    await expect.poll(() => again.socketClosed(), { timeout: CUT_WITHIN_MS }).toBe(true);
    expect(again.received().length).toBeLessThan(PATHS * VALUE_CHARS);
    for (const a of stuck) a.destroy();
  }, 60_000);

  it('is whole for a client that reads it, at once or slowly within httpReadBytesPerSMin, after a pause shorter than the stall', async () => {
    const s = await start();
    const fast = rawRequest(s, GET_STATE, CUT_WITHIN_MS * 2);
    const slow = rawRequest(s, GET_STATE, CUT_WITHIN_MS * 2);
    await new Promise((res) => setTimeout(res, STALL_MS / 2));
    fast.read();
    // 1 MiB every 50 ms: 20 MiB/s, over the 8 MiB/s the server allows for.
    slow.read(1024 * 1024);
    for (const a of [fast, slow]) {
      await expect.poll(() => a.received().includes('}}'), { timeout: CUT_WITHIN_MS }).toBe(true);
      const text = a.received().toString('latin1');
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { values: Record<string, string> };
      expect(Object.keys(body.values)).toHaveLength(PATHS);
      expect(body.values['/big/3']).toBe('d'.repeat(VALUE_CHARS));
      a.destroy();
    }
  }, 60_000);
});
