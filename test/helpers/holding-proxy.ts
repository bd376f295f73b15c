/**
 * A TCP proxy in front of a server that makes chosen answers slow: for a request whose path
 * `holds` takes, the answer's status line and headers go through, and its body is held (the
 * rest of that connection's bytes from the server are kept back, never sent). Each held
 * connection records when the proxy saw its client side (the node that asked) close, so a
 * test sees whether that node let go of a slow answer, and when.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface HeldAnswer {
  path: string;
  /** When the answer's headers went through and its body began to be held (Date.now()). */
  heldAt: number;
  /** When the asking side closed the connection (undefined: still open). */
  closedAt: number | undefined;
}

export class HoldingProxy {
  readonly held: HeldAnswer[] = [];
  private readonly sockets = new Set<Socket>();

  private readonly server: Server;
  url = '';

  private constructor(target: string, holds: (path: string) => boolean) {
    const t = new URL(target);
    this.server = createServer((client) => this.pipe(client, Number(t.port), t.hostname, holds));
  }

  /** A proxy to `target` (http://host:port) on a free port; `holds(path)` picks the answers to hold. */
  static async start(target: string, holds: (path: string) => boolean): Promise<HoldingProxy> {
    const proxy = new HoldingProxy(target, holds);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as { port: number }).port}`;
    return proxy;
  }

  private pipe(client: Socket, port: number, host: string, holds: (path: string) => boolean): void {
    const upstream = connect(port, host);
    this.sockets.add(client).add(upstream);
    let holding: HeldAnswer | undefined;
    let wanted: string | undefined;
    let head = Buffer.alloc(0);
    client.on('data', (d: Buffer) => {
      // One request at a time on a connection (undici does not pipeline by default): its request line names its path.
      for (const m of d.toString('latin1').matchAll(/(?:^|\r\n)(?:GET|POST) (\S+) HTTP\/1\.1\r\n/g)) {
        const path = (m[1] as string).split('?')[0] as string;
        if (wanted === undefined && holds(path)) wanted = path;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (holding) return; // held for good
      if (wanted === undefined) {
        client.write(d);
        return;
      }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.write(head.subarray(0, end + 4));
      holding = { path: wanted, heldAt: Date.now(), closedAt: undefined };
      this.held.push(holding);
    });
    client.on('close', () => {
      if (holding) holding.closedAt = Date.now();
      upstream.destroy();
    });
    upstream.on('close', () => {
      if (!holding) client.destroy();
    });
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
