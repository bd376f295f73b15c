/**
 * The built-in simulator: an HTTP server on its own port that plays an upstream fabric.
 * - GET /counters: the CSV matrix of seed 001 (switches x 8 metrics from fabric.ts's model),
 *   with ETag, X-Snapshot-Ts (epoch ms) and Cache-Control: no-store; 304 on If-None-Match.
 * - GET /ndt/get_detected_flows and GET /ndt/get_graph_data: twin-like flow and topology
 *   JSON derived from the same snapshot (seed 000's APIs).
 * - Faults: fault500Pct percent of requests answer 500; about 20% of requests wait
 *   faultSlowMs first.
 * A new snapshot is taken every intervalMs (or on tick() when `manual`).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FABRIC_METRICS, fabricBatches } from './fabric.js';
import { twinFlows, twinGraph } from './twin.js';

export interface SimulatorOptions {
  port?: number;
  host?: string;
  switches?: number;
  intervalMs?: number;
  fault500Pct?: number;
  faultSlowMs?: number;
  seed?: number;
  /** Take snapshots only on tick() (tests). */
  manual?: boolean;
}

export interface Snapshot {
  /** Sequence number, also the ETag (quoted). */
  id: number;
  tsMs: number;
  csv: string;
  /** Switch id -> metric values in FABRIC_METRICS order. */
  rows: Map<string, number[]>;
}

/** Fraction of requests that get the added latency. */
const SLOW_REQUEST_FRACTION = 0.2;

export class Simulator {
  private readonly bootId = randomBytes(4).toString('hex');
  readonly opts: Required<Omit<SimulatorOptions, 'host' | 'port'>>;
  private readonly server: Server;
  private readonly gen: Generator<{ ts: number; updates: Array<[string, unknown]> }>;
  private timer: NodeJS.Timeout | undefined;
  snapshot!: Snapshot;
  readonly stats = { requests: 0, ok: 0, notModified: 0, errors: 0, slow: 0 };
  url = '';

  private constructor(opts: SimulatorOptions) {
    this.opts = {
      switches: opts.switches ?? 64,
      intervalMs: opts.intervalMs ?? 1000,
      fault500Pct: opts.fault500Pct ?? 0,
      faultSlowMs: opts.faultSlowMs ?? 0,
      seed: opts.seed ?? 42,
      manual: opts.manual ?? false,
    };
    this.gen = fabricBatches(this.opts.seed, this.opts.switches, Number.POSITIVE_INFINITY, Date.now() * 1000) as Simulator['gen'];
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
  }

  static async start(opts: SimulatorOptions = {}): Promise<Simulator> {
    const s = new Simulator(opts);
    s.tick();
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    const a = s.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    s.url = `http://${host}:${a.port}`;
    if (!s.opts.manual && s.opts.intervalMs > 0) {
      s.timer = setInterval(() => s.tick(), s.opts.intervalMs);
      s.timer.unref();
    }
    return s;
  }

  /** Takes the next snapshot of the fabric. */
  tick(): Snapshot {
    const b = this.gen.next().value as { updates: Array<[string, number]> };
    const rows = new Map<string, number[]>();
    const m = FABRIC_METRICS.length;
    const lines = [`switch_id,${FABRIC_METRICS.join(',')}`];
    for (let i = 0; i < b.updates.length; i += m) {
      const sw = (b.updates[i] as [string, number])[0].split('/')[2] as string;
      const vals = b.updates.slice(i, i + m).map((u) => u[1]);
      rows.set(sw, vals);
      lines.push(`${sw},${vals.join(',')}`);
    }
    const id = (this.snapshot?.id ?? 0) + 1;
    // Snapshot times strictly increase even when two ticks share a millisecond.
    const tsMs = Math.max(Date.now(), (this.snapshot?.tsMs ?? 0) + 1);
    this.snapshot = { id, tsMs, csv: `${lines.join('\n')}\n`, rows };
    return this.snapshot;
  }

  /** Changes fault injection while running. */
  setFaults(f: { fault500Pct?: number; faultSlowMs?: number }): void {
    if (f.fault500Pct !== undefined) this.opts.fault500Pct = f.fault500Pct;
    if (f.faultSlowMs !== undefined) this.opts.faultSlowMs = f.faultSlowMs;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const path = (req.url ?? '/').split('?')[0];
    if (this.opts.faultSlowMs > 0 && Math.random() < SLOW_REQUEST_FRACTION) {
      this.stats.slow++;
      await new Promise((r) => setTimeout(r, this.opts.faultSlowMs));
    }
    if (this.opts.fault500Pct > 0 && Math.random() * 100 < this.opts.fault500Pct) {
      this.stats.errors++;
      res.writeHead(500, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('injected fault\n');
      return;
    }
    const snap = this.snapshot;
    // The boot id keeps a restarted simulator's ETags from matching the old one's.
    const etag = `"${this.bootId}-${snap.id}"`;
    const common = { etag, 'x-snapshot-ts': String(snap.tsMs), 'cache-control': 'no-store' };
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    switch (path) {
      case '/counters':
        if (req.headers['if-none-match'] === etag) {
          this.stats.notModified++;
          res.writeHead(304, common).end();
          return;
        }
        this.stats.ok++;
        res.writeHead(200, { ...common, 'content-type': 'text/csv' }).end(snap.csv);
        return;
      case '/ndt/get_detected_flows':
        this.stats.ok++;
        res.writeHead(200, { ...common, 'content-type': 'application/json' }).end(JSON.stringify(twinFlows(snap, this.opts.seed)));
        return;
      case '/ndt/get_graph_data':
        this.stats.ok++;
        res.writeHead(200, { ...common, 'content-type': 'application/json' }).end(JSON.stringify(twinGraph(snap)));
        return;
      case '/health':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, snapshot: snap.id }));
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }
}
