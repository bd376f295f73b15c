/**
 * A real Prometheus (test/helpers/prometheus.ts) with its remote-write receiver on, a
 * remote-write client to load it (WriteRequest protobuf encoded here, snappy framing as literal blocks: valid snappy that any decoder reads), and
 * promtool's query commands. Used by the PromQL differential test and benchmark.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startPrometheus, type RunningPrometheus } from './prometheus.js';

const run = promisify(execFile);

export interface PromSeries {
  /** Labels, `__name__` included. */
  labels: Record<string, string>;
  /** [ms, value] in time order; 'stale' is Prometheus' stale marker. */
  samples: Array<[number, number | 'stale']>;
}

// ------------------------------------------------------------------ protobuf (remote write 1.0)

/** A protobuf varint of `n` (as its 64 bits: a negative number is 10 bytes) onto `out`. */
export function varint(n: number | bigint, out: number[]): void {
  let v = BigInt.asUintN(64, BigInt(n));
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

/** A protobuf length-delimited field (`field`, wire type 2) holding `bytes` onto `out`. */
export function lengthDelimited(field: number, bytes: ArrayLike<number>, out: number[]): void {
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

/** Prometheus (test/helpers/prometheus.ts) with its remote-write receiver on, scraping nothing, keeping everything. */
export function startReceiver(): Promise<RunningPrometheus> {
  return startPrometheus('global:\n  scrape_interval: 1h\n', {
    args: ['--web.enable-remote-write-receiver', '--storage.tsdb.retention.time=100y'],
  });
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
