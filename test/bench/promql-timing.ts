/**
 * The query servers test/bench/promql.ts times, and how it times them: Tapedeck served from
 * a process of its own (test/bench/promql-server.ts, of this tree or of another tree for
 * A/B), every server's CPU read from /proc, runs interleaved across the servers so that a
 * moment of machine load falls on all of them alike, and the figures of a phase of runs.
 */
import { spawn } from 'node:child_process';
import { access, readdir, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

/** CPU milliseconds a process has used so far (user + system, /proc's 10 ms ticks). */
export type CpuClock = () => Promise<number>;

export interface Target {
  /** tapedeck, base (the tree under BASE_TREE) or prometheus. */
  name: string;
  url: string;
  cpu: CpuClock;
}

export interface RunningTarget extends Target {
  stop: () => Promise<void>;
}

export function procCpu(pid: number): CpuClock {
  return async () => {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
}

/** The pid of the Prometheus listening on `url` (test/helpers/prometheus.ts does not expose it). */
export async function prometheusPid(url: string): Promise<number> {
  const port = new URL(url).port;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('prometheus') && cmd.includes(`--web.listen-address=127.0.0.1:${port}`)) return Number(name);
  }
  throw new Error(`no Prometheus process listens on ${url}`);
}

export interface RunningTapedeck extends RunningTarget {
  /** Milliseconds from the spawn to its port line (listening), and to ready (its preparation's end; listening, for a build without one). */
  listenMs: number;
  readyMs: number;
  /** The process's CPU from its spawn to ready (/proc: module loading, open, preparation, warm-up). */
  cpuMsReady: number;
  /** What its preparation did (/ready's `promql` detail), as its ready line says. */
  readyDetail: string;
  /** Resident set size now (kB, /proc). */
  rssKb: () => Promise<number>;
}

/**
 * A fresh Tapedeck query server of `tree` (a checkout with node_modules) on the archive in
 * `dir`. `waitReady`: resolves once the server says its query API is prepared (its
 * `{"ready":true}` line: no request is sent, so nothing of the query path runs before the
 * first query); a build without preparation (no server/promql/prepare.ts) is ready once it
 * listens.
 */
export async function startTapedeck(name: string, tree: string, dir: string, waitReady = true, env: Record<string, string> = {}): Promise<RunningTapedeck> {
  const script = join(tree, 'test/bench/promql-server.ts');
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--max-old-space-size=8192', '--import', 'tsx', script, dir], { cwd: tree, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout });
  const next = (): Promise<string> => new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before listening or ready`)));
  });
  const { port } = JSON.parse(await next()) as { port: number };
  const listenMs = performance.now() - t0;
  const prepares = await access(join(tree, 'server/promql/prepare.ts')).then(() => true, () => false);
  const ready = waitReady && prepares ? (JSON.parse(await next()) as { detail?: string }) : {};
  const readyMs = performance.now() - t0;
  const pid = child.pid as number;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    cpu: procCpu(pid),
    listenMs: Math.round(listenMs),
    readyMs: Math.round(readyMs),
    cpuMsReady: await procCpu(pid)(),
    readyDetail: ready.detail ?? '',
    rssKb: async () => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN),
    stop: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Figures of one phase (cold or warm) of one query on one server. */
export interface Phase {
  runs: number;
  /** The phase's first run: for the cold phase, the server's first answer to this query. */
  firstMs: number;
  p50Ms: number;
  /** The p99 of the phase's runs: the single slowest only when there are fewer than 100. */
  p99Ms: number;
  maxMs: number;
  /** The server's CPU over the phase divided by its runs (a total, so below the 10 ms tick). */
  cpuPerQueryMs: number;
  /** Per-run CPU percentiles, only where a run costs many ticks (wide queries). */
  cpuP50Ms?: number;
  cpuP99Ms?: number;
}

export interface RunOutcome {
  ms: number;
  cpuMs: number;
  body: string;
}

/** One query: its form POST (as Grafana sends it), timed, with the server's CPU around it. */
export async function runOnce(t: Target, form: URLSearchParams): Promise<RunOutcome> {
  const c = await t.cpu();
  const t0 = performance.now();
  const r = await fetch(`${t.url}/api/v1/query_range`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const body = await r.text();
  const ms = performance.now() - t0;
  const cpuMs = (await t.cpu()) - c;
  if (r.status !== 200) throw new Error(`${t.name}: ${r.status} ${body.slice(0, 300)}`);
  return { ms, cpuMs, body };
}

/**
 * `runs` runs on every target, interleaved: run i asks the targets in an order rotated by i,
 * so that each server is first, second, ... equally often. Each target's phase figures, and
 * the first body each answered.
 */
export async function interleaved(targets: readonly Target[], form: URLSearchParams, runs: number, perRunCpu: boolean): Promise<Map<string, { phase: Phase; body: string }>> {
  const ms = targets.map((): number[] => []);
  const cpu = targets.map((): number[] => []);
  const bodies: string[] = targets.map(() => '');
  const cpu0 = await Promise.all(targets.map((t) => t.cpu()));
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < targets.length; j++) {
      const k = (i + j) % targets.length;
      const out = await runOnce(targets[k] as Target, form);
      (ms[k] as number[]).push(out.ms);
      (cpu[k] as number[]).push(out.cpuMs);
      if (i === 0) bodies[k] = out.body;
    }
  }
  const cpu1 = await Promise.all(targets.map((t) => t.cpu()));
  const result = new Map<string, { phase: Phase; body: string }>();
  targets.forEach((t, k) => {
    const times = [...(ms[k] as number[])].sort((a, b) => a - b);
    const cpus = [...(cpu[k] as number[])].sort((a, b) => a - b);
    const phase: Phase = {
      runs,
      firstMs: round1((ms[k] as number[])[0] as number),
      p50Ms: round1(percentile(times, 50)),
      p99Ms: round1(percentile(times, 99)),
      maxMs: round1(times[times.length - 1] as number),
      cpuPerQueryMs: round2(((cpu1[k] as number) - (cpu0[k] as number)) / runs),
    };
    if (perRunCpu) Object.assign(phase, { cpuP50Ms: round1(percentile(cpus, 50)), cpuP99Ms: round1(percentile(cpus, 99)) });
    result.set(t.name, { phase, body: bodies[k] as string });
  });
  return result;
}

/** Median and range of a figure over the rounds. */
export function spread(xs: readonly number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
  return { median: round2(mid), min: round2(s[0] as number), max: round2(s[s.length - 1] as number) };
}
