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
 * is in flight. A thread that stops under reads (terminated, or failed) has them made on this
 * thread, span after span through node:fs, and another is started for the next; where no
 * thread can start, every read is made so: slower, never a failed read (which the sidecar
 * store would take for damage, and rebuild).
 */
import { read } from 'node:fs';
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
  fd: number;
  q: SpanRequest;
  piecesBytes: number;
  spansBytes: number;
}

let worker: Worker | undefined;
/** The thread could not be started (a runtime without worker threads): every read is made here. */
let refused = false;
let nextId = 0;
const waiting = new Map<number, Waiting>();

/** Reads answered by the thread, and made on this thread instead (no thread, or it stopped under them). */
export const spanReaderStats = { threadReads: 0, hereReads: 0 };

/** Reads `q` of the open descriptor `fd` (kept open by the caller until this settles). */
export function readSpans(fd: number, q: SpanRequest): Promise<SpanBytes> {
  let piecesBytes = 0;
  for (let j = 0; j < q.bytes.length; j++) piecesBytes += q.bytes[j] as number;
  let spansBytes = 0;
  for (let i = 0; i < q.length.length; i++) spansBytes += q.length[i] as number;
  for (let j = 0; j < q.from.length; j++) {
    if ((q.from[j] as number) + (q.bytes[j] as number) > spansBytes) throw new RangeError(`piece ${j} lies past the spans' ${spansBytes} bytes`);
  }
  const w = started();
  if (!w) return readHere(fd, q, piecesBytes, spansBytes);
  const buf = new ArrayBuffer(piecesBytes + spansBytes);
  const id = nextId++;
  return new Promise<SpanBytes>((resolve, reject) => {
    waiting.set(id, { resolve, reject, fd, q, piecesBytes, spansBytes });
    if (waiting.size === 1) w.ref();
    w.postMessage({ id, fd, start: q.start, length: q.length, from: q.from, bytes: q.bytes, piecesBytes, buf }, [buf]);
  });
}

/** Stops the thread (its reads in flight are made here); the next read starts another. */
export async function stopSpanReader(): Promise<void> {
  await worker?.terminate();
}

function started(): Worker | undefined {
  if (worker || refused) return worker;
  let w: Worker;
  try {
    // No flags of the process (--import tsx, --input-type=module): a plain CommonJS script.
    w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
  } catch {
    refused = true;
    return undefined;
  }
  w.unref();
  w.on('message', (r: Reply) => settle(w, r));
  // A thread that stopped (terminated, or failed: it never should, its errors are replies):
  // the reads it held are made here.
  const gone = (): void => {
    if (worker !== w) return;
    worker = undefined;
    const held = [...waiting.values()];
    waiting.clear();
    for (const x of held) readHere(x.fd, x.q, x.piecesBytes, x.spansBytes).then(x.resolve, x.reject);
  };
  w.on('error', gone);
  w.on('exit', gone);
  worker = w;
  return w;
}

function settle(w: Worker, r: Reply): void {
  const x = waiting.get(r.id);
  if (!x) return;
  waiting.delete(r.id);
  if (waiting.size === 0) w.unref();
  spanReaderStats.threadReads++;
  if (r.buf === undefined || r.got === undefined) x.reject(new SpanReadError(r.code ?? 'EIO', r.message ?? 'read failed'));
  else x.resolve({ pieces: new Uint8Array(r.buf, 0, x.piecesBytes), got: r.got });
}

/** The read made on this thread, a span after the other through libuv's threads (as the thread's, the pieces copied to the front). */
async function readHere(fd: number, q: SpanRequest, piecesBytes: number, spansBytes: number): Promise<SpanBytes> {
  spanReaderStats.hereReads++;
  const out = new Uint8Array(piecesBytes + spansBytes);
  const got = new Uint32Array(q.start.length);
  for (let i = 0, at = piecesBytes; i < q.start.length; at += q.length[i] as number, i++) {
    const len = q.length[i] as number;
    let n = 0;
    while (n < len) {
      const k = await new Promise<number>((resolve, reject) => read(fd, out, at + n, len - n, (q.start[i] as number) + n, (err, bytes) => (err ? reject(err) : resolve(bytes))));
      if (k === 0) break;
      n += k;
    }
    got[i] = n;
  }
  for (let j = 0, to = 0; j < q.from.length; to += q.bytes[j] as number, j++) {
    const from = piecesBytes + (q.from[j] as number);
    out.copyWithin(to, from, from + (q.bytes[j] as number));
  }
  return { pieces: out.subarray(0, piecesBytes), got };
}
