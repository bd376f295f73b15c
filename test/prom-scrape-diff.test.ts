/**
 * The `prometheus-scrape` source against a real Prometheus 2.42, by what each records: one
 * exposition server whose answer goes through phases (series appear, change value and
 * vanish; NaN, ±Inf, -0, the largest and smallest doubles; every escape in label values;
 * exposed labels clashing with the target's; histograms, summaries; samples with their own
 * timestamps; OpenMetrics with `# EOF`; a 500, a target that never answers, a 200 with an
 * HTML page; recoveries) is scraped by both, with the same interval, timeout, extra labels
 * and honor_timestamps. Each phase is compared through the same PromQL instant and range
 * queries against both APIs, at a time when both have recorded that phase: the same label
 * sets, `up` and the scrape_* series Tapedeck records included, the same values (as the
 * strings both APIs write: bit for bit, -0 included), the same series gone stale. Samples
 * with their own timestamps are served to both scrapers at once (the server holds the first
 * scrape until the other one comes) and must come back at exactly the same times.
 *
 * Where Tapedeck records otherwise on purpose (docs/prometheus.md, "Scrape source"), the
 * test checks that it does: no scrape_samples_post_metric_relabeling or scrape_series_added,
 * a timestamped sample older than the target's previous scrape or in the future left out.
 * Values are seeded (PROM_SCRAPE_DIFF_SEED replays a run).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrometheus, type RunningPrometheus } from './helpers/prometheus.js';
import { recordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { until } from './helpers/until.js';
import { rng } from './helpers/workload.js';

const SEED = scheduleSeed('PROM_SCRAPE_DIFF_SEED', 'prom-scrape-diff');
const rand = rng(SEED);

type Who = 'prom' | 'tapedeck';
const WHO: readonly Who[] = ['prom', 'tapedeck'];

/** Scrape interval and timeout of both scrapers (ms). */
const INTERVAL_MS = 1000;
/** How long a scrape of a timestamped phase waits for the other scraper's (under the timeout). */
const HOLD_MS = 650;

/** A double as the exposition writes it (Go's ParseFloat reads JavaScript's shortest digits). */
function num(v: number): string {
  if (Object.is(v, -0)) return '-0';
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** A random double from random bits (any exponent, subnormals too), NaN excluded. */
function randomDouble(): number {
  const dv = new DataView(new ArrayBuffer(8));
  for (;;) {
    dv.setUint32(0, Math.floor(rand() * 2 ** 32));
    dv.setUint32(4, Math.floor(rand() * 2 ** 32));
    const v = dv.getFloat64(0);
    if (!Number.isNaN(v)) return v;
  }
}

const SPECIAL: ReadonlyArray<[string, string]> = [
  ['nan', 'NaN'], ['pinf', '+Inf'], ['ninf', '-Inf'], ['negzero', '-0'], ['zero', '0'],
  ['max', '1.7976931348623157e308'], ['min_subnormal', '5e-324'], ['min_normal', '2.2250738585072014e-308'],
  ['long_digits', '0.1000000000000000055511151231257827'], ['big_int', '9007199254740993'], ['exp', '1e+21'],
  ['go_inf', 'Inf'], ['go_infinity', '-infinity'], ['underflow', '1e-400'],
];

/** Label values as the exposition writes them (escapes included): each must come back as the same value in both. */
const ESCAPED: readonly string[] = [
  'back\\\\slash', 'quote\\"d', 'line\\nbreak', 'tab\\tkept', 'other\\q', 'path/a=b%25', 'glob*?[x]{y}', 'ünïcødé 😀', ' spaced ', 'trailing\\\\',
];

/** Bodies drawn once: both scrapers get the same values all phase long. */
const DRAWN = new Map<string, string>();
function once(k: string, draw: () => string): string {
  let v = DRAWN.get(k);
  if (v === undefined) DRAWN.set(k, (v = draw()));
  return v;
}

/** The text-format body of a plain phase: `k` picks which series are there, values are drawn once per phase. */
function textBody(k: number): string {
  return once(`text${k}`, () => drawTextBody(k));
}

function drawTextBody(k: number): string {
  const lines: string[] = ['# HELP g A gauge.', '# TYPE g gauge'];
  const gs = k % 2 === 0 ? ['a', 'b'] : ['a', 'c'];
  for (const g of gs) lines.push(`g{k="${g}"} ${num(randomDouble())}`);
  for (const [name, v] of SPECIAL) lines.push(`special{v="${name}"} ${v}`);
  ESCAPED.forEach((e, i) => lines.push(`esc{i="${i}",v="${e}"} ${i}`));
  lines.push('clash{job="exporter",instance="elsewhere:1",site="other"} 7');
  lines.push('empty_label{a="",b="1"} 3');
  lines.push('# TYPE h histogram', `h_bucket{le="0.1"} ${k}`, `h_bucket{le="+Inf"} ${k + 2}`, `h_sum ${num(randomDouble())}`, `h_count ${k + 2}`);
  lines.push('# TYPE s summary', 's{quantile="0.5"} 0.25', 's{quantile="0.99"} NaN', `s_sum ${k}`, `s_count ${k * 3}`);
  lines.push(`c_total ${k * 10}`);
  if (k < 3) lines.push(`early_only ${k}`);
  return `${lines.join('\n')}\n`;
}

interface Phase {
  name: string;
  /** A body, or a failure: a status, no answer at all. */
  kind: 'text' | 'om' | 'status' | 'hang' | 'html';
  /** The body; `tsMs` when the phase serves samples with their own timestamps (both scrapers at once). */
  body?: (tsMs: number | undefined) => string;
  timed?: boolean;
}

const TS_VALUES = new Map<number, string>();
function timedValue(tsMs: number): string {
  let v = TS_VALUES.get(tsMs);
  if (v === undefined) TS_VALUES.set(tsMs, (v = num(randomDouble())));
  return v;
}

let oldTsMs = 0;
let futureTsMs = 0;

const PHASES: Phase[] = [
  { name: 'first', kind: 'text', body: () => textBody(0) },
  { name: 'values change, g{k="b"} goes, g{k="c"} comes', kind: 'text', body: () => textBody(1) },
  {
    name: 'own timestamps (text)', kind: 'text', timed: true,
    body: (ts) => `${textBody(2)}${ts === undefined ? '' : `tsm{src="text"} ${timedValue(ts)} ${ts}\n`}old_ts 1 ${oldTsMs}\nfuture_ts 1 ${futureTsMs}\n`,
  },
  {
    name: 'OpenMetrics, own timestamps in seconds', kind: 'om', timed: true,
    body: (ts) => [
      '# TYPE om_c counter', '# HELP om_c A counter.', 'om_c_total 5', 'om_c_created 1700000000.5',
      '# TYPE om_g gauge', `om_g{k="x"} ${once('om_g', () => num(randomDouble()))}`, 'om_g{k="y"} -0',
      '# TYPE om_i info', 'om_i_info{version="1.2"} 1',
      '# TYPE om_h histogram', 'om_h_bucket{le="1"} 2', 'om_h_bucket{le="+Inf"} 3', 'om_h_sum 4.5', 'om_h_count 3',
      ...(ts === undefined ? [] : [`tsm{src="om"} ${timedValue(ts)} ${(ts / 1000).toFixed(3)}`]),
      '# EOF', '',
    ].join('\n'),
  },
  { name: 'HTTP 500', kind: 'status' },
  { name: 'back up', kind: 'text', body: () => textBody(5) },
  { name: 'no answer (timeout)', kind: 'hang' },
  { name: 'back up again', kind: 'text', body: () => textBody(7) },
  { name: 'a 200 with an HTML page after two good lines', kind: 'html' },
  { name: 'back up at last', kind: 'text', body: () => textBody(9) },
];

/** The exposition server: the current phase's answer, counting each scraper's requests. */
class Exposition {
  phase = 0;
  readonly served: Record<Who, number> = { prom: 0, tapedeck: 0 };
  /** Timestamps (ms) of the timestamped samples served to each. */
  readonly timedServed: Record<Who, number[]> = { prom: [], tapedeck: [] };
  private held: { who: Who; res: http.ServerResponse; timer: NodeJS.Timeout } | undefined;
  private readonly hung = new Set<http.ServerResponse>();
  readonly server = http.createServer((req, res) => this.serve(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/metrics`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  next(): void {
    this.phase++;
    this.served.prom = 0;
    this.served.tapedeck = 0;
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const who: Who = (req.headers['user-agent'] ?? '').startsWith('Prometheus/') ? 'prom' : 'tapedeck';
    const phase = PHASES[this.phase] as Phase;
    this.served[who]++;
    if (phase.kind === 'status') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('failing\n');
    if (phase.kind === 'hang') {
      this.hung.add(res);
      res.on('close', () => this.hung.delete(res));
      return;
    }
    if (phase.kind === 'html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('a_ok 1\nb_ok 2\n<!DOCTYPE html>\n<html><body>Login</body></html>\n');
    const type = phase.kind === 'om' ? 'application/openmetrics-text; version=1.0.0; charset=utf-8' : 'text/plain; version=0.0.4';
    const body = phase.body as NonNullable<Phase['body']>;
    if (!phase.timed) return void res.writeHead(200, { 'content-type': type }).end(body(undefined));
    // Both scrapers get the same timestamped sample: the first waits for the other.
    const h = this.held;
    res.on('close', () => {
      if (this.held?.res !== res) return;
      clearTimeout(this.held.timer);
      this.held = undefined;
    });
    if (h === undefined || h.who === who) {
      if (h) this.release(h, type, body(undefined));
      this.held = { who, res, timer: setTimeout(() => {
        if (this.held?.res !== res) return;
        this.held = undefined;
        res.writeHead(200, { 'content-type': type }).end(body(undefined));
      }, HOLD_MS) };
      return;
    }
    this.held = undefined;
    clearTimeout(h.timer);
    // After both requests came, so after each scraper's previous batch; answered once it is past.
    const tsMs = Math.floor(performance.timeOrigin + performance.now()) + 1;
    const answer = (): void => {
      if (Date.now() <= tsMs || performance.timeOrigin + performance.now() <= tsMs + 1) return void setTimeout(answer, 1);
      const text = body(tsMs);
      for (const [w, r] of [[h.who, h.res], [who, res]] as const) {
        this.timedServed[w].push(tsMs);
        r.writeHead(200, { 'content-type': type }).end(text);
      }
    };
    answer();
  }

  private release(h: NonNullable<Exposition['held']>, type: string, text: string): void {
    clearTimeout(h.timer);
    h.res.writeHead(200, { 'content-type': type }).end(text);
  }
}

interface Sample { metric: Record<string, string>; value?: [number, string]; values?: Array<[number, string]> }

async function query(base: string, path: string, params: Record<string, string>): Promise<Sample[]> {
  const r = await fetch(`${base}${path}?${new URLSearchParams(params).toString()}`);
  const j = (await r.json()) as { status: string; data: { result: Sample[] }; error?: string };
  if (j.status !== 'success') throw new Error(`${base}${path} ${JSON.stringify(params)}: ${j.error}`);
  return j.data.result;
}

/** The series Prometheus records per scrape that Tapedeck does not (docs/prometheus.md). */
const PROM_ONLY = new Set(['scrape_samples_post_metric_relabeling', 'scrape_series_added']);

/** A label set as one sorted key. */
function key(metric: Record<string, string>): string {
  return JSON.stringify(Object.entries(metric).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/** An answer as label set -> value; scrape_duration_seconds' value is each scraper's own. */
function byKey(result: Sample[], who: Who): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of result) {
    const name = s.metric.__name__ as string;
    if (who === 'prom' && PROM_ONLY.has(name)) continue;
    const v = s.value ?? s.values?.[0];
    out.set(key(s.metric), name === 'scrape_duration_seconds' ? 'its own' : (v as [number, string])[1]);
  }
  return out;
}

let prom: RunningPrometheus;
let tapedeck: Awaited<ReturnType<typeof recordingServer>>;
const expo = new Exposition();
/** Each phase's evaluation time (ms): both scrapers recorded that phase at least once before it. */
const evalAtMs: number[] = [];

beforeAll(async () => {
  await expo.start();
  const instance = new URL(expo.url).host;
  prom = await startPrometheus([
    `global: {scrape_interval: ${INTERVAL_MS}ms, scrape_timeout: ${INTERVAL_MS}ms}`,
    'scrape_configs:',
    '  - job_name: diff',
    '    honor_timestamps: true',
    '    metrics_path: /metrics',
    `    static_configs: [{targets: ['${instance}'], labels: {site: lab}}]`,
    '',
  ].join('\n'));
  tapedeck = await recordingServer({
    record: { spec: ['/**'], flush_interval: '100ms' },
    sources: [{ name: 'push', type: 'push' }, {
      name: 'scraper', type: 'prometheus-scrape', targets: [expo.url], job: 'diff', labels: { site: 'lab' }, honor_timestamps: true,
      interval: `${INTERVAL_MS}ms`, timeout: `${INTERVAL_MS}ms`, backoff_initial: `${INTERVAL_MS}ms`, backoff_max: `${INTERVAL_MS}ms`,
    }],
  });
}, 60_000);

afterAll(async () => {
  await tapedeck?.close();
  await prom?.stop();
  await expo.close();
});

describe('prometheus-scrape against Prometheus 2.42: what each records of the same target', () => {
  // One test: the recording server's directory lives as long as a test.
  it('records the same of each phase as Prometheus, and timestamped samples at the same times', async () => {
    await runPhases();
    await comparePhases();
    await compareTimed();
  }, 150_000);
});

/** Runs the phases: both scrapers record each. */
async function runPhases(): Promise<void> {
  {
    for (let i = 0; i < PHASES.length; i++) {
      const p = PHASES[i] as Phase;
      if (i === 2) {
        const now = Date.now();
        oldTsMs = now - 10 * 60_000;
        futureTsMs = now + 10 * 60_000;
      }
      // Twice each: the first scrape of the phase is recorded (stamped) before the second is asked.
      await until(() => WHO.every((w) => expo.served[w] >= 2), 30_000, `phase ${i} (${p.name}): two scrapes each (seed ${SEED})`);
      evalAtMs.push(Date.now());
      const at = { ...expo.served };
      // Then once more each: a scrape stamped before evalAt got this phase's answer.
      await until(() => WHO.every((w) => expo.served[w] > at[w]), 30_000, `phase ${i} (${p.name}): one more scrape each`);
      if (i < PHASES.length - 1) expo.next();
    }
    await tapedeck.archive.writer?.flush();
  }
}

/** The same series with the same values in each phase (instant and range queries). */
async function comparePhases(): Promise<void> {
  {
    expect(evalAtMs).toHaveLength(PHASES.length);
    for (let i = 0; i < PHASES.length; i++) {
      const t = ((evalAtMs[i] as number) / 1000).toFixed(3);
      for (const [route, params] of [
        ['/api/v1/query', { query: '{job="diff"}', time: t }],
        ['/api/v1/query_range', { query: '{__name__=~".+",job="diff"}', start: t, end: t, step: '1' }],
      ] as const) {
        const theirs = byKey(await query(prom.url, route, params), 'prom');
        const ours = byKey(await query(tapedeck.url, route, params), 'tapedeck');
        const shown = `phase ${i} (${(PHASES[i] as Phase).name}) at ${t}, ${route} (seed ${SEED})`;
        expect([...ours.keys()].sort(), `${shown}: the same label sets`).toEqual([...theirs.keys()].sort());
        for (const [k, v] of theirs) expect(ours.get(k), `${shown}: ${k}`).toBe(v);
      }
    }
  }
}

/** Samples with their own timestamps at exactly those times, in both; the documented ones left out. */
async function compareTimed(): Promise<void> {
  {
    const t = (Date.now() / 1000).toFixed(3);
    const q = { query: '{job="diff",__name__=~"tsm|old_ts|future_ts"}[30m]', time: t };
    const raw = async (base: string): Promise<Map<string, Array<[number, string]>>> => new Map((await query(base, '/api/v1/query', q)).map((s) => [key(s.metric), s.values ?? []]));
    const theirs = await raw(prom.url);
    const ours = await raw(tapedeck.url);
    expect(expo.timedServed.prom.length, `paired scrapes (seed ${SEED})`).toBeGreaterThan(0);
    expect(expo.timedServed.tapedeck).toEqual(expo.timedServed.prom);
    const tsmKeys = [...theirs.keys()].filter((k) => k.includes('"tsm"'));
    expect(tsmKeys).toHaveLength(2);
    for (const k of tsmKeys) expect(ours.get(k), `${k} (seed ${SEED})`).toEqual(theirs.get(k));
    const allTimes = tsmKeys.flatMap((k) => (theirs.get(k) ?? []).map(([s]) => Math.round(s * 1000))).sort((a, b) => a - b);
    expect(allTimes).toEqual([...expo.timedServed.prom].sort((a, b) => a - b));
    // On purpose: a timestamp before the target's previous scrape is left out (Prometheus
    // takes one up to an hour old), as is one in the future (Prometheus takes it).
    expect([...theirs.keys()].some((k) => k.includes('"old_ts"'))).toBe(true);
    expect([...ours.keys()].some((k) => k.includes('"old_ts"'))).toBe(false);
    const future = { query: 'future_ts', time: ((futureTsMs + 1000) / 1000).toFixed(3) };
    expect(await query(prom.url, '/api/v1/query', future)).toHaveLength(1);
    expect(await query(tapedeck.url, '/api/v1/query', future)).toHaveLength(0);
  }
}
