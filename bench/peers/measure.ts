/**
 * What every TypeScript side of the peer harness measures the same way as src/main.rs:
 * percentiles, resident memory from /proc/self/status, CPU time from /proc/self/task, the
 * seek instants file.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface Rss {
  peakMB: number;
  anonMB: number;
  fileMB: number;
}

/** VmHWM, not getrusage: Linux carries ru_maxrss across exec from the parent. */
export function rss(): Rss {
  const status = readFileSync('/proc/self/status', 'utf8');
  const mb = (key: string): number => Math.round(Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
  return { peakMB: mb('VmHWM'), anonMB: mb('RssAnon'), fileMB: mb('RssFile') };
}

/** The same nearest-rank percentile as src/main.rs. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const v = s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
  return Math.round(v * 1000) / 1000;
}

export function spread(xs: readonly number[]): { p50: number; p99: number; max: number } {
  return { p50: pct(xs, 50), p99: pct(xs, 99), max: pct(xs, 100) };
}

/** One µs timestamp a line, written by the driver so every side seeks to the same instants. */
export function readSeeks(file: string): number[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map(Number);
}

export function flag(argv: readonly string[], name: string): string {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : undefined;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

/**
 * CPU time of every thread of this process so far, in seconds: the first field of each
 * /proc/self/task/<tid>/schedstat (ns on a CPU). The same on every side (src/main.rs
 * cpu_secs), so that a loaded machine, which stretches wall time, changes it little:
 * updates per CPU-second compare the sides' work rather than their share of the cores.
 */
export function cpuSecs(): number {
  let ns = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}
