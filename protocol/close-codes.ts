/**
 * WebSocket close codes: the one table every server route, client and the web player use
 * (clients match on the number, so it never changes meaning). 1000-1011 are RFC 6455's;
 * 4000-4999 are ours. docs/playback.md lists them (closeCodesMarkdown below; a test keeps
 * the copy in step). Pure.
 */

export const CLOSE_CODES = {
  /** The server ended the stream on purpose: the session was deleted or closed. */
  normal: 1000,
  /** The server is shutting down, or the archive behind the stream closed. */
  goingAway: 1001,
  /** A frame broke the WebSocket protocol (bad opcode, unmasked frame); sent by ws. */
  protocolError: 1002,
  /** Never sent: what a client sees when the connection drops without a close frame. */
  abnormal: 1006,
  /** A text frame that is not UTF-8; sent by ws. */
  badPayload: 1007,
  /** Refused by policy: a bad ack level or source on an ingest stream. */
  policy: 1008,
  /** A frame over the server's wsMaxPayloadBytes; sent by ws. */
  tooBig: 1009,
  /** The server failed (I/O, internal error); the client may retry. */
  internal: 1011,
  /** A newer connection to the same session took it over (reconnect, another tab). */
  replaced: 4000,
  /**
   * The client did not read its stream: the frames waiting for it grew past the server's
   * bound, or it answered no ping in time. The session lives on; the client may reconnect.
   */
  unresponsive: 4008,
  /** The session is gone (deleted or collected) by the time the stream opened. */
  noSuchSession: 4404,
} as const;

export type CloseCodeName = keyof typeof CLOSE_CODES;
export type CloseCode = (typeof CLOSE_CODES)[CloseCodeName];

/** Codes after which a session client must not reconnect to the same session. */
export function closeIsFinal(code: number): boolean {
  return code === CLOSE_CODES.normal || code === CLOSE_CODES.replaced || code === CLOSE_CODES.noSuchSession;
}

const MEANINGS: Record<CloseCodeName, string> = {
  normal: 'the session was deleted or closed (an `end` frame came first)',
  goingAway: 'the server is shutting down, or the archive behind an ingest stream closed',
  protocolError: 'the client broke the WebSocket protocol (sent by ws)',
  abnormal: 'never sent: the connection dropped without a close frame (clients reconnect)',
  badPayload: 'a text frame that is not UTF-8 (sent by ws)',
  policy: 'refused: a bad `ack` or `source` on an ingest stream',
  tooBig: 'a frame over `wsMaxPayloadBytes` (1 MiB; sent by ws)',
  internal: 'the server failed (I/O, internal error); retry',
  replaced: 'a newer connection took the session over (do not reconnect)',
  unresponsive: 'the client did not read its stream: frames waiting for it passed `wsSessionOverflowBytesMax`, or no pong came within `wsPongTimeoutMs` (server/limits.ts); the session lives on, reconnect to resume',
  noSuchSession: 'no such session when the stream opened (do not reconnect)',
};

/** The table as Markdown rows, for docs/playback.md. */
export function closeCodesMarkdown(): string {
  const rows = (Object.keys(CLOSE_CODES) as CloseCodeName[]).map((k) => `| ${CLOSE_CODES[k]} | \`${k}\` | ${MEANINGS[k]} |`);
  return ['| code | name (`CLOSE_CODES` in `protocol/close-codes.ts`) | meaning |', '|---|---|---|', ...rows].join('\n');
}
