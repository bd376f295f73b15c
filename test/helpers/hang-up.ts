/** Clients that leave: a request sent over a raw socket to be destroyed unread, and the server's count of them. */
import { connect, type Socket } from 'node:net';

/** Sends a GET over a raw socket and returns the socket, to be destroyed unread (a client that hangs up). */
export function hangUpLater(url: string, path: string): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** tapedeck_requests_canceled_total{at} of the server at `url` (0 before its first). */
export async function canceledCount(url: string, at: 'waiting' | 'running' | 'session' = 'running'): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^tapedeck_requests_canceled_total\\{at="${at}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}
