/**
 * Liveness of the server's WebSocket streams (session streams, push ingest): a peer that
 * stops answering (gone without a FIN, or not reading) is closed with 4008 `unresponsive`
 * (protocol/close-codes.ts), and cut if it does not finish the close handshake either
 * (SERVER_LIMITS, "Session streams"). Tests shorten the limits.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { CLOSE_CODES } from '../../protocol/close-codes.js';
import { SERVER_LIMITS } from '../limits.js';

/** The bounds of a stream whose client does not read (SERVER_LIMITS, "Session streams"); tests shorten them. */
export interface StreamLimits {
  wsSessionOverflowBytesMax: number;
  wsPingIntervalMs: number;
  wsPongTimeoutMs: number;
  wsReadBytesPerSMin: number;
  wsCloseGraceMs: number;
  wsIngestAnswersWaitingBytesMax: number;
}

export const STREAM_LIMITS: StreamLimits = {
  wsSessionOverflowBytesMax: SERVER_LIMITS.wsSessionOverflowBytesMax,
  wsPingIntervalMs: SERVER_LIMITS.wsPingIntervalMs,
  wsPongTimeoutMs: SERVER_LIMITS.wsPongTimeoutMs,
  wsReadBytesPerSMin: SERVER_LIMITS.wsReadBytesPerSMin,
  wsCloseGraceMs: SERVER_LIMITS.wsCloseGraceMs,
  wsIngestAnswersWaitingBytesMax: SERVER_LIMITS.wsIngestAnswersWaitingBytesMax,
};

/**
 * Closes a stream with `code`, and cuts it when the client does not finish the close
 * handshake within wsCloseGraceMs (a client that does not read never sees the close frame
 * behind what waits for it; ws's own wait is 30 s).
 */
export function closeStream(socket: WebSocket, code: number, why: string, limits: StreamLimits): void {
  if (socket.readyState !== socket.OPEN) return;
  socket.close(code, why);
  const cut = setTimeout(() => socket.terminate(), limits.wsCloseGraceMs);
  cut.unref();
  socket.once('close', () => clearTimeout(cut));
}

/** Closes a stream whose client does not read with 4008, and cuts it if the close handshake does not finish either. */
export function closeUnresponsive(socket: WebSocket, why: string, limits: StreamLimits): void {
  closeStream(socket, CLOSE_CODES.unresponsive, why, limits);
}

/**
 * Calls `gone` once, as soon as the peer is known to be leaving: its close frame read, its
 * FIN, an error, or the close itself. ws emits 'close' only when its TCP socket has closed:
 * after a close frame or a FIN it first writes what waits for the peer (its close frame
 * behind it), which, from a peer that no longer reads (it left while behind a backlog), takes
 * until the close handshake times out (30 s) or pings find it silent. So the stream is cut
 * wsCloseGraceMs after the peer began to leave, whatever still waits for it.
 */
export function whenLeaving(socket: WebSocket, limits: StreamLimits, gone: () => void): void {
  let left = false;
  const leave = (): void => {
    if (left) return;
    left = true;
    gone();
    if (socket.readyState === socket.CLOSED) return;
    const cut = setTimeout(() => socket.terminate(), limits.wsCloseGraceMs);
    cut.unref();
    socket.once('close', () => clearTimeout(cut));
  };
  // ws's own parts (8.x): the TCP socket ('end': the peer's FIN) and the frame reader
  // ('conclude': the peer's close frame), heard beside ws's listeners.
  const parts = socket as unknown as { _socket?: Socket; _receiver?: EventEmitter };
  parts._socket?.once('end', leave);
  parts._receiver?.once('conclude', leave);
  socket.once('close', leave);
  socket.on('error', leave);
}

/** Bytes handed to a stream's socket so far (taken by the kernel or waiting for it). */
function handedBytes(socket: WebSocket): number {
  return (socket as unknown as { _socket?: Socket })._socket?.bytesWritten ?? 0;
}

/**
 * Pings the stream every wsPingIntervalMs and closes with 4008 one whose peer is not there
 * (gone without a FIN, or no longer reading).
 *
 * A ping waits behind every byte sent before it, in the server and in the kernels' buffers
 * (megabytes), so a healthy client on a slow link (unlimited play, a backlog left by a pause)
 * answers late; and while the server stops reading the socket (push ingest behind the
 * archive) its pong waits unread. So a ping is answered in time when its pong (echoing
 * the ping's payload) comes within wsPongTimeoutMs plus the time to read, at
 * wsReadBytesPerSMin, the bytes sent between the last answered ping and it: a peer gone
 * behind a backlog of B bytes is closed after wsPongTimeoutMs + B / wsReadBytesPerSMin (B is
 * bounded: what the loop sends stops at wsBufferHighBytes, the rest at
 * wsSessionOverflowBytesMax, and the kernels' buffers). While `heldByServer` says the server
 * holds the socket for a reason of its own (not the peer's backlog), the wait starts again.
 * The next ping goes once the last one is answered: pings queued behind a backlog would
 * reach the client all at once (ws clients end a connection with 60 pongs waiting to go).
 */
export function keepAlive(socket: WebSocket, limits: StreamLimits, heldByServer: () => boolean = () => false): Liveness {
  /** The ping not answered yet: when it went, and the stream's length then (one at a time: a backlog holds no train of pings). */
  let pending: { atMs: number; at: number } | undefined;
  /** The stream's length at the last answered ping: the peer has read that far. */
  let readTo = 0;
  /** Who waits for the next answered ping (or the close). */
  let waiters: Array<() => void> = [];
  const wakeWaiters = (): void => {
    const w = waiters;
    waiters = [];
    for (const done of w) done();
  };
  const ping = (): void => {
    if (pending !== undefined || socket.readyState !== socket.OPEN) return;
    pending = { atMs: Date.now(), at: handedBytes(socket) };
    socket.ping(String(pending.at));
  };
  socket.on('pong', (data: Buffer) => {
    if (pending === undefined || Number(data.toString('latin1')) !== pending.at) return; // not an answer to ours
    readTo = pending.at;
    pending = undefined;
    wakeWaiters();
  });
  const timer = setInterval(() => {
    const nowMs = Date.now();
    if (pending !== undefined && heldByServer()) pending.atMs = nowMs;
    if (pending !== undefined && nowMs - pending.atMs > limits.wsPongTimeoutMs + ((pending.at - readTo) / limits.wsReadBytesPerSMin) * 1000) {
      return closeUnresponsive(socket, `no pong within ${limits.wsPongTimeoutMs} ms (behind ${pending.at - readTo} bytes)`, limits);
    }
    ping();
  }, limits.wsPingIntervalMs);
  timer.unref();
  socket.once('close', () => {
    clearInterval(timer);
    wakeWaiters();
  });
  return {
    unreadBytes: () => handedBytes(socket) - readTo,
    ping,
    answered: () => {
      if (socket.readyState === socket.CLOSED) return Promise.resolve();
      const answered = new Promise<void>((done) => waiters.push(done));
      ping();
      return answered;
    },
  };
}

/**
 * What a stream's sender learns from its pings: how much of what it sent the peer has not
 * been seen to read. A sender that keeps that under a window (the session streams: about
 * wsBufferHighBytes) bounds every ping's deadline, so a peer gone without a word is found
 * within wsPongTimeoutMs plus the window at wsReadBytesPerSMin, whatever was asked for.
 */
export interface Liveness {
  /** Bytes handed to the stream past the last answered ping (in the server, the kernels' buffers, or read by the peer unbeknown). */
  unreadBytes(): number;
  /** Sends a ping now, unless one is out. */
  ping(): void;
  /** Resolves at the next answered ping, or at the close; a ping goes now unless one is out. */
  answered(): Promise<void>;
}
