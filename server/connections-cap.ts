/**
 * How many connections the server holds at once (SERVER_LIMITS.httpConnectionsMax, and at
 * most httpConnectionsFdShare of the open-file limit): connections past it are closed as
 * they come, so that idle or hostile clients can never take the file descriptors the
 * archive needs to write (segments, catalog, coverage journal).
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { SERVER_LIMITS } from './limits.js';

/** The soft open-file limit in a /proc/<pid>/limits text; undefined when absent or unlimited. */
export function softOpenFilesLimit(limitsText: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limitsText);
  if (!m || m[1] === 'unlimited') return undefined;
  return Number(m[1]);
}

/** The cap for a process whose soft open-file limit is `openFiles` (undefined: not known). */
export function connectionsCap(openFiles: number | undefined, max = SERVER_LIMITS.httpConnectionsMax, share = SERVER_LIMITS.httpConnectionsFdShare): number {
  if (openFiles === undefined) return max;
  return Math.max(1, Math.min(max, Math.floor(openFiles * share)));
}

function processOpenFiles(): number | undefined {
  try {
    return softOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined; // not Linux: the configured cap alone
  }
}

/** Sets the cap on `server`; a connection closed for it is logged, at most once a minute. */
export function capConnections(server: Server, log: FastifyBaseLogger, max?: number): number {
  const cap = max ?? connectionsCap(processOpenFiles());
  server.maxConnections = cap;
  let dropped = 0;
  let loggedAt = 0;
  server.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - loggedAt < 60_000) return;
    loggedAt = now;
    log.warn({ cap, dropped }, 'connection closed on arrival: the server holds httpConnectionsMax connections (SERVER_LIMITS)');
  });
  return cap;
}
