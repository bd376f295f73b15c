/**
 * The `prometheus-scrape` source: the text exposition parser on tricky and hostile input,
 * then real scrapes of a real endpoint (an exposition server in the test whose series
 * change, fail and vanish) and of Tapedeck's own /metrics.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseExposition, parseFloatText } from '../protocol/prom-text.js';
import { seriesToPath } from '../protocol/prom-path.js';
import { SERVER_LIMITS } from '../server/limits.js';
import type { RunningServer } from '../server/main.js';
import type { PromScrapeSource } from '../server/sources/prom-scrape.js';
import { recordingServer } from './helpers/recording-server.js';
import { until, waitFor } from './helpers/until.js';

/** True when `promtool check metrics` reads the text without a parse error. */
async function promtoolParses(text: string): Promise<boolean> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  child.stdin.end(text);
  await new Promise((resolve) => child.once('exit', resolve));
  return !/pars(e|ing) error/i.test(out);
}
const LIMITS = { samplesMax: 1000, lineBytesMax: 4096 };

describe('text exposition parser', () => {
  it('reads names, labels with every escape, values of every spelling and timestamps', () => {
    const text = [
      '# HELP http_requests_total The total.\\nSecond line of help with "quotes".',
      '# TYPE http_requests_total counter',
      'http_requests_total{method="post",code="200"} 1027 1395066363000',
      'http_requests_total{ method = "get" , code="400", } 3   1395066363000',
      'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9',
      'metric_without_timestamp_and_labels 12.47',
      'something_weird{problem="division by zero"} +Inf 3982045',
      'a_nan NaN',
      'neg_inf -Inf',
      'go_style Inf',
      'colons:in:name 1',
      '# A free comment { with junk',
      '',
      '   ',
      'blanks_after 5 \t',
    ].join('\n');
    const got = parseExposition(text, LIMITS);
    expect(got).toEqual([
      { name: 'http_requests_total', labels: [['method', 'post'], ['code', '200']], value: 1027, tsUs: 1395066363000000 },
      { name: 'http_requests_total', labels: [['method', 'get'], ['code', '400']], value: 3, tsUs: 1395066363000000 },
      { name: 'msdos_file_access_time_seconds', labels: [['path', 'C:\\DIR\\FILE.TXT'], ['error', 'Cannot find file:\n"FILE.TXT"']], value: 1.458255915e9, tsUs: undefined },
      { name: 'metric_without_timestamp_and_labels', labels: [], value: 12.47, tsUs: undefined },
      { name: 'something_weird', labels: [['problem', 'division by zero']], value: Infinity, tsUs: 3982045000 },
      { name: 'a_nan', labels: [], value: NaN, tsUs: undefined },
      { name: 'neg_inf', labels: [], value: -Infinity, tsUs: undefined },
      { name: 'go_style', labels: [], value: Infinity, tsUs: undefined },
      { name: 'colons:in:name', labels: [], value: 1, tsUs: undefined },
      { name: 'blanks_after', labels: [], value: 5, tsUs: undefined },
    ]);
  });

  it('reads histograms and summaries as their _bucket, _sum, _count and quantile series', () => {
    const text = [
      '# TYPE rpc_duration_seconds summary',
      'rpc_duration_seconds{quantile="0.5"} 4773',
      'rpc_duration_seconds_sum 1.7560473e+07',
      'rpc_duration_seconds_count 2693',
      '# TYPE http_request_duration_seconds histogram',
      'http_request_duration_seconds_bucket{le="0.05"} 24054',
      'http_request_duration_seconds_bucket{le="+Inf"} 144320',
      'http_request_duration_seconds_sum 53423',
      'http_request_duration_seconds_count 144320',
    ].join('\n');
    const got = parseExposition(text, LIMITS).map((s) => seriesToPath({ name: s.name, labels: Object.fromEntries(s.labels) }));
    expect(got).toEqual([
      '/prom/rpc_duration_seconds/quantile=0.5',
      '/prom/rpc_duration_seconds_sum',
      '/prom/rpc_duration_seconds_count',
      '/prom/http_request_duration_seconds_bucket/le=0.05',
      '/prom/http_request_duration_seconds_bucket/le=+Inf',
      '/prom/http_request_duration_seconds_sum',
      '/prom/http_request_duration_seconds_count',
    ]);
  });

  it('reads OpenMetrics: seconds timestamps, exemplars dropped, # EOF ends the text', () => {
    const text = '# TYPE a counter\n# UNIT a_seconds seconds\na_total 1 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67\nb{x="y"} 2\n# EOF\n';
    // Prometheus 2.42 refuses data after # EOF, and a text without it (test/values-edge-prom-text.test.ts).
    expect(() => parseExposition(`${text}garbage after eof`, LIMITS, true)).toThrow(/unexpected data after # EOF/);
    expect(() => parseExposition(text.replace('# EOF\n', ''), LIMITS, true)).toThrow(/does not end with # EOF/);
    expect(parseExposition(text, LIMITS, true)).toEqual([
      { name: 'a_total', labels: [], value: 1, tsUs: 1520879607789000 },
      { name: 'b', labels: [['x', 'y']], value: 2, tsUs: undefined },
    ]);
  });

  const hostile: Array<[string, string, RegExp]> = [
    // Prometheus 2.42 keeps an unknown escape (`\t`) as written: test/values-edge-prom-text.test.ts.
    ['a label value whose closing quote is escaped', 'a{x="ab\\"} 1', /not closed/],
    ['an unclosed label value', 'a{x="abc} 1', /not closed/],
    ['a missing value', 'a{x="1"}', /expected a value/],
    ['a junk value', 'a 0x1F', /is not a value/],
    ['an empty value spelled as text', 'a one', /is not a value/],
    ['a fractional text-format timestamp', 'a 1 1.5', /not a timestamp/],
    ['three fields', 'a 1 2 3', /expected a value/],
    ['a bad label name', 'a{1x="1"} 1', /label name/],
    ['a missing comma', 'a{x="1" y="2"} 1', /expected "," or "}"/],
    ['a line that is not a sample', '{x="1"} 1', /metric name/],
    ['junk after the name', 'a-b 1', /unexpected/],
    ['a TYPE of no known type', '# TYPE a flux', /unknown metric type/],
    ['a HELP naming no metric', '# HELP 9a text', /names no metric/],
  ];
  for (const [what, line, why] of hostile) {
    it(`refuses ${what}, naming the line`, () => {
      expect(() => parseExposition(`ok 1\n${line}\n`, LIMITS)).toThrow(why);
      expect(() => parseExposition(`ok 1\n${line}\n`, LIMITS)).toThrow(/line 2/);
    });
  }

  it('stops at scrapeSamplesMax samples and at an over-long line', () => {
    expect(() => parseExposition('a 1\nb 2\nc 3\n', { samplesMax: 2, lineBytesMax: 100 })).toThrow(/scrapeSamplesMax/);
    expect(() => parseExposition(`a{x="${'v'.repeat(200)}"} 1`, { samplesMax: 2, lineBytesMax: 100 })).toThrow(/scrapeLineBytesMax/);
  });

  it('parses floats as Go does and nothing more', () => {
    expect(parseFloatText('1e3')).toBe(1000);
    expect(parseFloatText('-0')).toBe(-0);
    expect(parseFloatText('.5')).toBe(0.5);
    expect(parseFloatText('+INF')).toBe(Infinity);
    // Go's ParseFloat reads "Infinity" (Prometheus 2.42 scrapes `m Infinity` as +Inf).
    expect(parseFloatText('Infinity')).toBe(Infinity);
    for (const s of ['', ' ', '0x10', '1_000', '1e', '--1']) expect(parseFloatText(s), s).toBeUndefined();
  });
});

/** An exposition endpoint whose answer the test sets: text, or a status to fail with. */
async function endpoint(): Promise<{ url: string; set(text: string | number): void; scrapes(): number; close(): Promise<void> }> {
  let body: string | number = '';
  let n = 0;
  const srv = http.createServer((_req, res) => {
    n++;
    if (typeof body === 'number') {
      res.statusCode = body;
      res.end('failing');
      return;
    }
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(body);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    set: (t) => { body = t; },
    scrapes: () => n,
    close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }),
  };
}

let server: (RunningServer & { dir: string }) | undefined;
let other: (RunningServer & { dir: string }) | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await other?.close();
  other = undefined;
});

function latest(s: RunningServer, path: string): unknown {
  return s.recorder?.latest.get(path);
}

describe('prometheus-scrape source', () => {
  it('records each series with job, instance and extra labels, up = 1, exported_ for clashing labels', async () => {
    const ep = await endpoint();
    try {
      ep.set('# TYPE ifHCInOctets counter\nifHCInOctets{ifName="Gi0/1",job="exporter"} 42\n');
      server = await recordingServer({ sources: [{ name: 'edge', type: 'prometheus-scrape', targets: [ep.url], interval: '50ms', labels: { site: 'lab' } }] });
      const instance = new URL(ep.url).host;
      const path = seriesToPath({ name: 'ifHCInOctets', labels: { ifName: 'Gi0/1', exported_job: 'exporter', job: 'edge', instance, site: 'lab' } });
      const s = server;
      await until(() => latest(s, path) === 42, 10_000, path);
      expect(latest(s, seriesToPath({ name: 'up', labels: { job: 'edge', instance, site: 'lab' } }))).toBe(1);
      expect(latest(s, seriesToPath({ name: 'scrape_samples_scraped', labels: { job: 'edge', instance, site: 'lab' } }))).toBe(1);
    } finally {
      await ep.close();
    }
  });

  it('records null for a series that disappears, and up = 0 with null for every series when the target fails', async () => {
    const ep = await endpoint();
    try {
      ep.set('a 1\nb 2\n');
      server = await recordingServer({ sources: [{ name: 'edge', type: 'prometheus-scrape', targets: [ep.url], interval: '50ms', backoff_initial: '50ms', backoff_max: '50ms' }] });
      const s = server;
      const labels = { job: 'edge', instance: new URL(ep.url).host };
      const a = seriesToPath({ name: 'a', labels });
      const b = seriesToPath({ name: 'b', labels });
      const up = seriesToPath({ name: 'up', labels });
      await until(() => latest(s, b) === 2, 10_000, 'b = 2');
      ep.set('a 3\n');
      await until(() => latest(s, a) === 3, 10_000, 'a = 3');
      expect(latest(s, b)).toBeNull();
      ep.set(500);
      await until(() => latest(s, up) === 0, 10_000, 'up = 0');
      expect(latest(s, a)).toBeNull();
      ep.set('a 4\n');
      await until(() => latest(s, up) === 1 && latest(s, a) === 4, 10_000, 'back up');
      const health = (s.sources[0] as PromScrapeSource).health();
      expect(health.failures).toBeGreaterThan(0);
    } finally {
      await ep.close();
    }
  });

  it('records up = 0 for a target that never answers (timeout) and for one that refuses connections', async () => {
    const hang = http.createServer(() => undefined);
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    const hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}/metrics`;
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as { port: number }).port}/metrics`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      server = await recordingServer({ sources: [{ name: 'edge', type: 'prometheus-scrape', targets: [hangUrl, closedUrl], interval: '50ms', timeout: '200ms' }] });
      const s = server;
      for (const url of [hangUrl, closedUrl]) {
        const up = seriesToPath({ name: 'up', labels: { job: 'edge', instance: new URL(url).host } });
        await until(() => latest(s, up) === 0, 10_000, `up = 0 for ${url}`);
      }
      expect((s.sources[0] as PromScrapeSource).health().status).toBe('failing');
    } finally {
      hang.closeAllConnections();
      await new Promise<void>((resolve) => hang.close(() => resolve()));
    }
  });

  it('counts a bad exposition as a failed scrape (up = 0), not as series that vanished one by one', async () => {
    const ep = await endpoint();
    try {
      ep.set('a 1\n');
      server = await recordingServer({ sources: [{ name: 'edge', type: 'prometheus-scrape', targets: [ep.url], interval: '50ms', backoff_initial: '50ms', backoff_max: '50ms' }] });
      const s = server;
      const labels = { job: 'edge', instance: new URL(ep.url).host };
      await until(() => latest(s, seriesToPath({ name: 'a', labels })) === 1, 10_000, 'a = 1');
      ep.set('a 1\nb{x="\\q} 2\n');
      await until(() => latest(s, seriesToPath({ name: 'up', labels })) === 0, 10_000, 'up = 0');
      expect(latest(s, seriesToPath({ name: 'b', labels: { ...labels, x: 'q' } }))).toBeUndefined();
      expect((s.sources[0] as PromScrapeSource).health().lastError?.message).toMatch(/exposition line 2: a label value is not closed/);
    } finally {
      await ep.close();
    }
  });

  it('records a sample with its own timestamp at that time (honor_timestamps), and not a second time', async () => {
    const ep = await endpoint();
    try {
      const tsMs = Date.now() - 60_000;
      ep.set(`old 7 ${tsMs}\nfresh 8\n`);
      server = await recordingServer({ sources: [{ name: 'edge', type: 'prometheus-scrape', targets: [ep.url], interval: '50ms' }] });
      const s = server;
      const labels = { job: 'edge', instance: new URL(ep.url).host };
      const old = seriesToPath({ name: 'old', labels });
      const scraped = (s.sources[0] as PromScrapeSource).scrapers[0];
      await waitFor(async () => (scraped?.health().polls ?? 0) >= 3 || undefined, 10_000, '3 scrapes');
      await s.archive.writer?.flush();
      const c = s.archive.cursor({ filter: [old] });
      await c.seek('beginning');
      const batches = [];
      for (let bt = await c.next(); bt; bt = await c.next()) batches.push(bt);
      expect(batches).toEqual([{ ts: tsMs * 1000, updates: [[old, 7]] }]);
    } finally {
      await ep.close();
    }
  });

  it('takes a series exposed twice as Prometheus appends it: in time order, a sample out of bounds not counting', async () => {
    const ep = await endpoint();
    try {
      const earlier = Date.now() - 60_000;
      // twice: out of bounds (1970), then at the scrape; in order: earlier, then at the scrape;
      // once: at the scrape then earlier (out of order there); same: at the scrape twice (the first).
      ep.set(`twice 1 1000\ntwice 2\ninorder 3 ${earlier}\ninorder 4\nbackwards 5\nbackwards 6 ${earlier}\nsame 7\nsame 8\n`);
      server = await recordingServer({ sources: [{ name: 'dup', type: 'prometheus-scrape', targets: [ep.url], interval: '50ms' }] });
      const s = server;
      const labels = { job: 'dup', instance: new URL(ep.url).host };
      const scraped = (s.sources[0] as PromScrapeSource).scrapers[0];
      await waitFor(async () => (scraped?.health().polls ?? 0) >= 2 || undefined, 10_000, '2 scrapes');
      await s.archive.writer?.flush();
      const valuesOf = async (name: string): Promise<Array<[number, unknown]>> => {
        const c = s.archive.cursor({ filter: [seriesToPath({ name, labels })] });
        await c.seek('beginning');
        const out: Array<[number, unknown]> = [];
        for (let bt = await c.next(); bt; bt = await c.next()) for (const [, v] of bt.updates) out.push([bt.ts, v]);
        return out;
      };
      // One value a scrape (two scrapes at least): more scrapes may have come since.
      const only = async (name: string): Promise<unknown[]> => [...new Set((await valuesOf(name)).map(([, v]) => v))];
      expect((await valuesOf('twice')).length).toBeGreaterThanOrEqual(2);
      expect(await only('twice')).toEqual([2]);
      const inorder = await valuesOf('inorder');
      expect(inorder[0]).toEqual([earlier * 1000, 3]);
      expect(inorder.length).toBeGreaterThanOrEqual(3);
      expect([...new Set(inorder.slice(1).map(([, v]) => v))]).toEqual([4]);
      expect(await only('backwards')).toEqual([5]);
      expect(await only('same')).toEqual([7]);
    } finally {
      await ep.close();
    }
  });

  it('leaves out a timestamped sample that another source recorded past since the target\'s last scrape, never moving it', async () => {
    const ep = await endpoint();
    try {
      ep.set('plain 1\n');
      server = await recordingServer({ sources: [{ name: 'push', type: 'push' }, { name: 'edge', type: 'prometheus-scrape', targets: [ep.url], interval: '1s' }] });
      const s = server;
      const labels = { job: 'edge', instance: new URL(ep.url).host };
      const timed = seriesToPath({ name: 'timed', labels });
      const scraper = (s.sources[1] as PromScrapeSource).scrapers[0];
      let tsMs = 0;
      // After a scrape is recorded: a time after it, then a batch of another source past that
      // time, then the sample at that time, all before the next scrape (retried if one came between).
      for (let attempt = 0; ; attempt++) {
        const polls = scraper?.health().polls ?? 0;
        await until(() => (scraper?.health().polls ?? 0) > polls, 10_000, 'a scrape');
        const served = ep.scrapes();
        await new Promise((r) => setTimeout(r, 5));
        tsMs = Date.now();
        await new Promise((r) => setTimeout(r, 5));
        const push = await fetch(`${s.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"updates":{"/other/source":1}}\n' });
        expect(push.status).toBe(200);
        ep.set(`plain 1\ntimed 7 ${tsMs}\n`);
        if (ep.scrapes() === served) break;
        expect(attempt, 'a quiet second between two scrapes').toBeLessThan(5);
      }
      const polls = scraper?.health().polls ?? 0;
      await until(() => (scraper?.health().polls ?? 0) > polls, 10_000, 'the scrape with the timestamped sample');
      await s.archive.writer?.flush();
      const c = s.archive.cursor({ filter: [timed] });
      await c.seek('beginning');
      const batches = [];
      for (let bt = await c.next(); bt; bt = await c.next()) batches.push(bt);
      // Before: recorded 1 µs after the pushed batch, a time it was not.
      expect(batches).toEqual([]);
    } finally {
      await ep.close();
    }
  });

  it('scrapes Tapedeck\'s own /metrics, which promtool finds valid, and records its series', async () => {
    other = await recordingServer();
    const target = `${other.url}/metrics`;
    const text = await (await fetch(target)).text();
    // promtool lints names too (exit 1 for a lint finding); what matters here is that it parses.
    expect(await promtoolParses(text)).toBe(true);
    const expected = parseExposition(text, { samplesMax: SERVER_LIMITS.scrapeSamplesMax, lineBytesMax: SERVER_LIMITS.scrapeLineBytesMax });
    expect(expected.length).toBeGreaterThan(10);
    server = await recordingServer({ sources: [{ name: 'self', type: 'prometheus-scrape', targets: [target], interval: '100ms' }] });
    const s = server;
    const labels = { job: 'self', instance: new URL(target).host };
    await until(() => latest(s, seriesToPath({ name: 'up', labels })) === 1, 10_000, 'up = 1');
    // Every series of the exposition is there, under its path.
    for (const e of expected) {
      const path = seriesToPath({ name: e.name, labels: { ...Object.fromEntries(e.labels), ...labels } });
      expect(s.recorder?.latest.has(path), path).toBe(true);
    }
  });
});
