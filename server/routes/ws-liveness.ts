/**
 * Liveness of the server's WebSocket streams (session streams, push ingest): a peer that
 * stops answering (gone without a FIN, or not reading) is closed with 4008 `unresponsive`
 * (protocol/close-codes.ts), and cut if it does not finish the close handshake either
 * (SERVER_LIMITS, "Session streams"). Tests shorten the limits.
 */
import type { WebSocket } from 'ws';
import { CLOSE_CODES } from '../../protocol/close-codes.js';
import { SERVER_LIMITS } from '../limits.js';

/** The bounds of a stream whose client does not read (SERVER_LIMITS, "Session streams"); tests shorten them. */
export interface StreamLimits {
  wsSessionOverflowBytesMax: number;
  wsPingIntervalMs: number;
  wsPongTimeoutMs: number;
  wsCloseGraceMs: number;
}

export const STREAM_LIMITS: StreamLimits = {
  wsSessionOverflowBytesMax: SERVER_LIMITS.wsSessionOverflowBytesMax,
  wsPingIntervalMs: SERVER_LIMITS.wsPingIntervalMs,
  wsPongTimeoutMs: SERVER_LIMITS.wsPongTimeoutMs,
  wsCloseGraceMs: SERVER_LIMITS.wsCloseGraceMs,
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
 * Pings the stream every wsPingIntervalMs; one that answered no ping for wsPongTimeoutMs (a
 * peer gone without a FIN, a client that stopped reading) closes with 4008. While
 * `heldByServer` says the server itself stopped reading the socket (its pongs wait unread),
 * the silence is not the peer's: the wait starts again.
 */
export function keepAlive(socket: WebSocket, limits: StreamLimits, heldByServer: () => boolean = () => false): void {
  let answeredAt = Date.now();
  socket.on('pong', () => (answeredAt = Date.now()));
  const timer = setInterval(() => {
    if (heldByServer()) answeredAt = Date.now();
    if (Date.now() - answeredAt > limits.wsPongTimeoutMs) closeUnresponsive(socket, `no pong within ${limits.wsPongTimeoutMs} ms`, limits);
    else if (socket.readyState === socket.OPEN) socket.ping();
  }, limits.wsPingIntervalMs);
  timer.unref();
  socket.once('close', () => clearInterval(timer));
}
