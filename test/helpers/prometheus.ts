/**
 * A real Prometheus (Debian's /usr/bin/prometheus, scripts/install-promtool.sh) on a free
 * loopback port, for tests and benchmarks: config text in, URL out. Its config and TSDB
 * live in a fresh temporary directory, removed by stop(); the process is killed by stop()
 * and, should a test forget, when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './until.js';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

export interface PrometheusOptions {
  /** Extra flags, e.g. ['--web.enable-remote-write-receiver']. */
  args?: readonly string[];
  /** How long to wait for /-/ready (ms). */
  readyTimeoutMs?: number;
}

export interface RunningPrometheus {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The TSDB directory (--storage.tsdb.path). */
  dataDir: string;
  /** Everything it logged so far (stderr), for failure messages. */
  logs(): string;
  /** Kills it (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** A port the kernel just handed out and took back: free unless someone races for it (start retries then). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function startPrometheus(configText: string, opts: PrometheusOptions = {}): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-prom-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, configText);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(dir, configFile, await freePort(), opts);
    } catch (err) {
      lastError = err;
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

async function launch(dir: string, configFile: string, port: number, opts: PrometheusOptions): Promise<RunningPrometheus> {
  const dataDir = join(dir, `data-${port}`);
  const child = spawn(PROMETHEUS_BIN, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${dataDir}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
    ...(opts.args ?? []),
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-64 * 1024);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    running.delete(child);
    resolve();
  }));
  const url = `http://127.0.0.1:${port}`;
  const stopChild = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exit;
    clearTimeout(t);
  };
  try {
    await waitFor(async () => {
      if (exited) throw new Error(`prometheus exited: ${stderr.slice(-2000)}`);
      const r = await fetch(`${url}/-/ready`).catch(() => undefined);
      return r?.status === 200;
    }, opts.readyTimeoutMs ?? 60_000, 'prometheus /-/ready', { retryErrors: false });
  } catch (err) {
    await stopChild();
    throw err;
  }
  return {
    url,
    dataDir,
    logs: () => stderr,
    stop: async () => {
      await stopChild();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
