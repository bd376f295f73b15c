/**
 * An open-loop load generator for `bench:record`: N clients, each on its own keep-alive
 * connection, each sending one GET every `periodMs` at its own random phase (scheduled
 * against its first instant, so a late answer does not shift later requests). Latency is
 * from writing the request to reading the whole answer.
 *
 * Why not autocannon or undici here: autocannon's per-connection rate fires every
 * connection on the same tick (bursts of N requests at once), and 100 undici pools in one
 * process put the client's own per-request work into the figures (a bare `node:http`
 * server measured p95 8-10 ms through them on this machine, 0.8-1.0 ms through this). The
 * answer parser handles what the measured servers send: a status line, headers with
 * content-length, a body.
 */
import { connect, type Socket } from 'node:net';

export interface PacedResult {
  /** Latency of every answer, ms, sorted. */
  times: number[];
  non2xx: number;
}

/** Bytes a client may buffer of one answer before it gives up (no answer here is larger). */
const ANSWER_MAX_BYTES = 16 * 1024 * 1024;

export async function pacedLoad(opts: { port: number; path: string; clients: number; periodMs: number; seconds: number }): Promise<PacedResult> {
  const request = Buffer.from(`GET ${opts.path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`, 'latin1');
  const times: number[] = [];
  let non2xx = 0;
  const end = performance.now() + opts.seconds * 1000;
  const client = (): Promise<void> => new Promise((resolve, reject) => {
    const sock: Socket = connect(opts.port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let sentAt = 0;
    let n = 0;
    const first = performance.now() + Math.random() * opts.periodMs;
    const next = (): void => {
      const at = first + n * opts.periodMs;
      if (at >= end) {
        sock.end();
        resolve();
        return;
      }
      setTimeout(() => {
        sentAt = performance.now();
        sock.write(request);
      }, Math.max(0, at - performance.now()));
    };
    sock.on('connect', next);
    sock.on('error', reject);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length > ANSWER_MAX_BYTES) return reject(new Error(`an answer larger than ${ANSWER_MAX_BYTES} bytes`));
      const headEnd = buf.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buf.subarray(0, headEnd).toString('latin1');
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!m) return reject(new Error(`an answer without content-length: ${head.split('\r\n')[0]}`));
      const total = headEnd + 4 + Number(m[1]);
      if (buf.length < total) return;
      const status = Number(head.slice(9, 12));
      if (status < 200 || status > 299) non2xx++;
      times.push(performance.now() - sentAt);
      buf = buf.subarray(total);
      n++;
      next();
    });
  });
  await Promise.all(Array.from({ length: opts.clients }, client));
  times.sort((a, b) => a - b);
  return { times, non2xx };
}
