/**
 * How many connections the server holds at once (SERVER_LIMITS.httpConnectionsMax, and at
 * most httpConnectionsFdShare of the open-file limit): connections past it are closed as
 * they come, so that idle or hostile clients can never take the file descriptors the
 * archive needs to write (segments, catalog, coverage journal).
 *
 * And how many of them one client address holds (httpConnectionsPerAddressShare of that cap,
 * at most httpConnectionsPerAddressMax; publish.max_connections_per_address): without it one
 * address that opened cap idle connections (or WebSocket streams) locked every other client
 * out. A connection past its address's share is closed as it arrives, before a byte of it
 * is read; other addresses go on being served. IPv6 addresses count by their /64 (one host
 * is given a whole /64 and can pick any address in it).
 */
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
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

/** One address's connections under a total cap of `cap`: its share of it, at most `max`. */
export function perAddressCap(cap: number, max = SERVER_LIMITS.httpConnectionsPerAddressMax, share = SERVER_LIMITS.httpConnectionsPerAddressShare): number {
  return Math.max(1, Math.min(max, Math.floor(cap * share)));
}

/**
 * The client a remote address counts for: an IPv4 address (IPv4-mapped IPv6 too) as itself,
 * an IPv6 address by its /64 (`2001:db8:0:1::/64`); undefined when it is not an address.
 */
export function addressKey(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(':')) return address;
  const bare = address.replace(/%.*$/, '').toLowerCase(); // a zone id names the link, not the host
  const [head = '', tail] = bare.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded IPv4 address (::ffff:a.b.c.d forms aside) takes two groups.
  const groups = (g: string[]): number => g.reduce((n, x) => n + (x.includes('.') ? 2 : 1), 0);
  const zeros = tail === undefined ? 0 : 8 - groups(left) - groups(right);
  const all = [...left, ...Array<string>(Math.max(0, zeros)).fill('0'), ...right];
  if (all.length < 4) return bare;
  return `${all.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

function processOpenFiles(): number | undefined {
  try {
    return softOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined; // not Linux: the configured cap alone
  }
}

/** Calls `log` at most once a minute. */
function onceAMinute(log: () => void): () => void {
  let loggedAt = 0;
  return () => {
    const now = Date.now();
    if (now - loggedAt < 60_000) return;
    loggedAt = now;
    log();
  };
}

/**
 * Sets both caps on `server` (`max`: the total, default from the open-file limit;
 * `perAddress`: one address's, default perAddressCap of the total, never above it); a
 * connection closed for either is logged, at most once a minute each.
 */
export function capConnections(server: Server, log: FastifyBaseLogger, max?: number, perAddress?: number): { cap: number; perAddress: number } {
  const cap = max ?? connectionsCap(processOpenFiles());
  const each = Math.min(cap, perAddress ?? perAddressCap(cap));
  server.maxConnections = cap;
  let dropped = 0;
  const warnCap = onceAMinute(() => log.warn({ cap, dropped }, 'connection closed on arrival: the server holds httpConnectionsMax connections (SERVER_LIMITS)'));
  server.on('drop', () => {
    dropped++;
    warnCap();
  });
  // Counted on arrival, before the HTTP parser reads a byte (upgraded WebSockets stay counted until they close).
  const held = new Map<string, number>();
  let refused = 0;
  let lastRefused = '';
  const warnAddress = onceAMinute(() => log.warn({ address: lastRefused, perAddress: each, refused }, 'connection closed on arrival: its address holds httpConnectionsPerAddressMax connections (SERVER_LIMITS, publish.max_connections_per_address)'));
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress);
    if (key === undefined) return; // already gone
    const n = held.get(key) ?? 0;
    if (n >= each) {
      refused++;
      lastRefused = key;
      warnAddress();
      socket.destroy();
      return;
    }
    held.set(key, n + 1);
    socket.once('close', () => {
      const left = (held.get(key) ?? 1) - 1;
      if (left === 0) held.delete(key);
      else held.set(key, left);
    });
  });
  return { cap, perAddress: each };
}
