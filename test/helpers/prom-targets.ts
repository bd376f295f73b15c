/**
 * Exposition bodies served to a real Prometheus (test/helpers/prometheus.ts) as scrape
 * targets, one a body (job `t<i>`, path `/m<i>`, scraped every second), for tests that
 * compare Tapedeck's exposition parser with Prometheus' (test/values-edge-prom-text.test.ts,
 * test/audit9-prom-text.test.ts). `om` bodies are served as OpenMetrics.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startPrometheus, type RunningPrometheus } from './prometheus.js';

export interface ExpositionBody { body: string | Buffer; om: boolean }
export interface ScrapeTarget { labels: { job: string }; health: string; lastError: string }

export interface ExpositionTargets {
  prom: RunningPrometheus;
  /** host:port of the bodies' server: the targets' `instance`. */
  instance: string;
  /** Prometheus' view of the targets (/api/v1/targets). */
  targets(): Promise<ScrapeTarget[]>;
  stop(): Promise<void>;
}

export async function startExpositionTargets(bodies: readonly ExpositionBody[]): Promise<ExpositionTargets> {
  const upstream = createServer((req, res) => {
    const b = bodies[Number((req.url ?? '').slice('/m'.length))];
    if (b === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': b.om ? 'application/openmetrics-text; version=1.0.0; charset=utf-8' : 'text/plain; version=0.0.4' }).end(b.body);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  const port = (upstream.address() as AddressInfo).port;
  const jobs = bodies.map((_b, i) => `  - job_name: t${i}\n    metrics_path: /m${i}\n    static_configs: [{targets: ['127.0.0.1:${port}']}]\n`);
  const prom = await startPrometheus(`global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n${jobs.join('')}`);
  return {
    prom,
    instance: `127.0.0.1:${port}`,
    targets: async () => ((await (await fetch(`${prom.url}/api/v1/targets`)).json()) as { data: { activeTargets: ScrapeTarget[] } }).data.activeTargets,
    stop: async () => {
      await prom.stop();
      upstream.closeAllConnections();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    },
  };
}
