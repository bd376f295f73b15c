/**
 * Many small spans of one open file read in one round trip: a worker thread reads them with
 * pread one after the other into one buffer, which it hands back. A version-5 sidecar's read
 * of one series reads one column body a block of a compacted day (about 400), and each read
 * through node:fs paid its own trip through libuv's threads: 361 spans of 100 bytes cost
 * 3-4 ms of CPU through FileHandle.read (8 at once), 1.5 ms through fs.read callbacks, 0.5 ms
 * here, 0.26 ms with readSync on the main thread, which would hold the event loop on every
 * page-cache miss.
 *
 * The caller keeps the descriptor open until the promise settles (Archive.withReadFd). One
 * thread for the process, started on first use, holding the process open only while a read
 * is in flight; a thread that fails rejects the reads it held and is started again on the next.
 */
import { Worker } from 'node:worker_threads';

/**
 * Spans [start[i], start[i] + length[i]) of a file to read, then pieces of them to hand back
 * back to back: piece j is bytes [from[j], from[j] + bytes[j]) of the spans read one after
 * the other (a version-5 chunk's bodies lie in spans read by offset, its bodies wanted in
 * its order: one CRC32C and one reader over them).
 */
export interface SpanRequest {
  start: Float64Array;
  length: Uint32Array;
  from: Float64Array;
  bytes: Uint32Array;
}

/** The pieces back to back, and how many bytes each span had (fewer where the file ends: a piece past it holds zeros there). */
export interface SpanBytes {
  pieces: Uint8Array;
  got: Uint32Array;
}

/** A read the thread refused: the system's error code (EBADF, EIO...). */
export class SpanReadError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

// CommonJS, evaluated as the worker's script: no loader or build step needed for it.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { readSync } = require('node:fs');
parentPort.on('message', (m) => {
  const out = new Uint8Array(m.buf);
  const got = new Uint32Array(m.start.length);
  try {
    // The spans after the pieces, then each piece copied to its place in front.
    let at = m.piecesBytes;
    for (let i = 0; i < m.start.length; i++) {
      const len = m.length[i];
      let n = 0;
      while (n < len) {
        const k = readSync(m.fd, out, at + n, len - n, m.start[i] + n);
        if (k === 0) break;
        n += k;
      }
      got[i] = n;
      at += len;
    }
    for (let j = 0, to = 0; j < m.from.length; j++) {
      const from = m.piecesBytes + m.from[j];
      out.copyWithin(to, from, from + m.bytes[j]);
      to += m.bytes[j];
    }
  } catch (err) {
    parentPort.postMessage({ id: m.id, code: String(err.code ?? 'EIO'), message: String(err.message) });
    return;
  }
  parentPort.postMessage({ id: m.id, buf: m.buf, got }, [m.buf, got.buffer]);
});
`;

interface Reply {
  id: number;
  buf?: ArrayBuffer;
  got?: Uint32Array;
  code?: string;
  message?: string;
}

interface Waiting {
  resolve: (r: SpanBytes) => void;
  reject: (err: Error) => void;
  piecesBytes: number;
}

let worker: Worker | undefined;
let nextId = 0;
const waiting = new Map<number, Waiting>();

/** Reads `q` of the open descriptor `fd` (kept open by the caller until this settles). */
export function readSpans(fd: number, q: SpanRequest): Promise<SpanBytes> {
  let piecesBytes = 0;
  for (let j = 0; j < q.bytes.length; j++) piecesBytes += q.bytes[j] as number;
  let spansBytes = 0;
  for (let i = 0; i < q.length.length; i++) spansBytes += q.length[i] as number;
  for (let j = 0; j < q.from.length; j++) {
    if ((q.from[j] as number) + (q.bytes[j] as number) > spansBytes) throw new RangeError(`piece ${j} lies past the spans' ${spansBytes} bytes`);
  }
  const buf = new ArrayBuffer(piecesBytes + spansBytes);
  const w = started();
  const id = nextId++;
  return new Promise<SpanBytes>((resolve, reject) => {
    waiting.set(id, { resolve, reject, piecesBytes });
    if (waiting.size === 1) w.ref();
    w.postMessage({ id, fd, start: q.start, length: q.length, from: q.from, bytes: q.bytes, piecesBytes, buf }, [buf]);
  });
}

function started(): Worker {
  if (worker) return worker;
  // No flags of the process (--import tsx, --input-type=module): a plain CommonJS script.
  const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
  w.unref();
  w.on('message', (r: Reply) => settle(w, r));
  // A thread that failed (it never should: its errors are replies) rejects what it held.
  const gone = (err: Error): void => {
    if (worker !== w) return;
    worker = undefined;
    const held = [...waiting.values()];
    waiting.clear();
    for (const x of held) x.reject(err);
  };
  w.on('error', gone);
  w.on('exit', (code) => gone(new SpanReadError('EIO', `span reader thread exited (code ${code})`)));
  worker = w;
  return w;
}

function settle(w: Worker, r: Reply): void {
  const x = waiting.get(r.id);
  if (!x) return;
  waiting.delete(r.id);
  if (waiting.size === 0) w.unref();
  if (r.buf === undefined || r.got === undefined) x.reject(new SpanReadError(r.code ?? 'EIO', r.message ?? 'read failed'));
  else x.resolve({ pieces: new Uint8Array(r.buf, 0, x.piecesBytes), got: r.got });
}
