/**
 * A real Prometheus (Debian's /usr/bin/prometheus, 2.42) on a free loopback port with its
 * remote-write receiver on, a remote-write client to load it (WriteRequest protobuf encoded
 * here, snappy framing as literal blocks: valid snappy that any decoder reads), and
 * promtool's query commands. Used by the PromQL differential test and benchmark.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PromSeries {
  /** Labels, `__name__` included. */
  labels: Record<string, string>;
  /** [ms, value] in time order; 'stale' is Prometheus' stale marker. */
  samples: Array<[number, number | 'stale']>;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

// ------------------------------------------------------------------ protobuf (remote write 1.0)

function varint(n: number | bigint, out: number[]): void {
  let v = BigInt.asUintN(64, BigInt(n));
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function lengthDelimited(field: number, bytes: ArrayLike<number>, out: number[]): void {
  varint((field << 3) | 2, out);
  varint(bytes.length, out);
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i] as number);
}

function encodeSeries(s: PromSeries): number[] {
  const out: number[] = [];
  for (const name of Object.keys(s.labels).sort()) {
    const label: number[] = [];
    lengthDelimited(1, Buffer.from(name), label);
    lengthDelimited(2, Buffer.from(s.labels[name] as string), label);
    lengthDelimited(1, label, out);
  }
  const view = new DataView(new ArrayBuffer(8));
  for (const [t, v] of s.samples) {
    const sample: number[] = [];
    // The stale marker is a NaN with its own bits (0x7ff0000000000002): written as bits.
    if (v === 'stale') view.setBigUint64(0, 0x7ff0000000000002n, true);
    else view.setFloat64(0, v, true);
    sample.push((1 << 3) | 1, ...new Uint8Array(view.buffer));
    varint((2 << 3) | 0, sample);
    varint(t, sample);
    lengthDelimited(2, sample, out);
  }
  return out;
}

/** A WriteRequest of these series. */
export function encodeWriteRequest(series: readonly PromSeries[]): Uint8Array {
  const out: number[] = [];
  for (const s of series) lengthDelimited(1, encodeSeries(s), out);
  return Uint8Array.from(out);
}

/** Snappy block format with literal elements only (no compression, always valid). */
export function snappyLiteral(data: Uint8Array): Buffer {
  const out: number[] = [];
  varint(data.length, out);
  const chunkMax = 65536;
  for (let off = 0; off < data.length; off += chunkMax) {
    const n = Math.min(chunkMax, data.length - off);
    // Literal tag with a 2-byte length (n - 1).
    out.push((61 << 2) | 0, (n - 1) & 0xff, ((n - 1) >> 8) & 0xff);
    for (let i = 0; i < n; i++) out.push(data[off + i] as number);
  }
  return Buffer.from(out);
}

export async function remoteWrite(url: string, series: readonly PromSeries[]): Promise<void> {
  const body = snappyLiteral(encodeWriteRequest(series));
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
    body,
  });
  if (r.status >= 300) throw new Error(`remote write to ${url}: ${r.status} ${await r.text()}`);
}

// ------------------------------------------------------------------ the server

export interface PrometheusServer {
  url: string;
  stop(): Promise<void>;
}

export async function startPrometheus(extraArgs: string[] = [], dataDir?: string): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-prom-'));
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, 'global:\n  scrape_interval: 1h\n');
  const port = await freePort();
  const child: ChildProcess = spawn(
    '/usr/bin/prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${dataDir ?? join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-remote-write-receiver',
      '--storage.tsdb.retention.time=100y',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${log}`);
    const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`prometheus not ready: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `promtool query instant|range -o json`: the parsed result, or the error text. */
export async function promtool(args: string[]): Promise<{ ok: true; result: unknown } | { ok: false; error: string }> {
  try {
    const { stdout } = await run('promtool', ['query', ...args], { timeout: 30_000, maxBuffer: 256 * 1024 * 1024 });
    return { ok: true, result: JSON.parse(stdout) as unknown };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, error: (e.stderr ?? e.message).trim() };
  }
}
