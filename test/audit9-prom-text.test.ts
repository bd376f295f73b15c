/**
 * The exposition grammars against the real Prometheus 2.42 (test/helpers/prometheus.ts), line
 * by line: where whitespace may go, which comments exist, timestamps (a sign, int64, seconds
 * down to the µs), exemplars (only on _total and _bucket, well formed), `\r`, empty lines.
 * Each body is served to Prometheus as one scrape target and parsed by parseExposition: both
 * take it or both refuse it, and when taken every series has the same value and, when the
 * line gives one, the same time in ms (Prometheus truncates an OpenMetrics time to ms;
 * Tapedeck keeps µs, whose ms are those). Curated bodies first (the ones the audit found),
 * then bodies built at random from the grammars' tokens and their near misses
 * (AUDIT9_PROM_TEXT_SEED replays a run).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../protocol/prom-text.js';
import { formatValue } from '../server/promql/format.js';
import { seriesToPath } from '../protocol/prom-path.js';
import type { PromScrapeSource } from '../server/sources/prom-scrape.js';
import { expositionText } from '../server/sources/prom-scrape.js';
import { recordingServer } from './helpers/recording-server.js';
import type { Batch } from '../protocol/value.js';
import type { RunningServer } from '../server/main.js';
import { startExpositionTargets, type ExpositionTargets, type ScrapeTarget } from './helpers/prom-targets.js';
import { scheduleSeed } from './helpers/seed.js';
import { until, waitFor } from './helpers/until.js';
import { rng } from './helpers/workload.js';

/** A recent time (s) both keep: Prometheus refuses samples far from its head. */
const NOW_S = Math.floor(Date.now() / 1000) - 30;

const TEXT: string[] = [
  'm 1 -5\n', 'm 1 -0\n', `m 1 -${NOW_S}000\n`, `m 1 ${NOW_S}123\n`, `m 1 00${NOW_S}000\n`, 'm 1 9223372036854775807\n', 'm 1 9223372036854775808\n',
  'm 1 1e3\n', 'm 1 +5\n', `m 1 ${NOW_S}000.5\n`, 'm 1 5 6\n', 'm 1 5\t6\n', 'm 1\t5\n', 'm  1  5 \n', 'm 1 # {a="b"} 1\n',
  'm 5\r\n', 'm 5 \r\n', 'm {a="b"} 1\n', 'm{ a="b" } 1\n', 'm{a="b",} 1\n', 'm{} 1\n', 'm{a="b"}1\n', 'm{,} 1\n', 'm{\ta="b"\t}\t1\n', 'm{a=\t"b"} 1\n',
  'm{a="b"}{c="d"} 1\n', 'm-1 5\n', 'm\t1\n', '\t\nm 1\n', ' m 1\n', 'm 1',
  '# TYPE m unknown\nm 1\n', '# TYPE m info\nm 1\n', '# TYPE m untyped\nm 1\n', '# TYPE m gauge \nm 1\n', '# TYPE m\nm 1\n', '# UNIT 1x y\nm 1\n',
  '# TYPE 1x gauge\nm 1\n', '# HELP\nm 1\n', '#HELP m x\nm 1\n', '#\tHELP m x\nm 1\n', '# HELP m\tx\nm 1\n', '# TYPE m{ gauge\nm 1\n',
  'm 1\n\r\n', '# TYPE m gauge\r\nm 1\n', '# HELP m x\r\nm 1\n', '# free\r\nm 1\n', 'm 1\n\n\n', 'm{a="x\r"} 1\n',
  'm{__x="1"} 1\n', 'm{a=""} 1\n', 'm{a="",b="2"} 1\n', 'm{a="1"} 1\nm{a="1"} 2\n', 'm{a="1",b=""} 1\nm{a="1"} 2\n', 'm{le="+Inf"} 1\n', 'm NaN 5\n',
];
const OM: string[] = [
  'm 1 -5\n# EOF\n', `m 1 -${NOW_S}.5\n# EOF\n`, 'm 1 -0\n# EOF\n', 'm 1 -0.0000005\n# EOF\n', `m 1 ${NOW_S}.123456\n# EOF\n`, `m 1 ${NOW_S}.1239\n# EOF\n`,
  `m 1 ${NOW_S}.0019\n# EOF\n`, `m 1 ${NOW_S}.1234567\n# EOF\n`, `m 1 ${NOW_S}e0\n# EOF\n`, `m 1 ${NOW_S}.\n# EOF\n`, `m 1 +${NOW_S}\n# EOF\n`, `m 1 ${NOW_S / 1000}e3\n# EOF\n`,
  'm 1 NaN\n# EOF\n', 'm 1 Inf\n# EOF\n', 'm 1 0x10\n# EOF\n',
  '# TYPE m gauge\nm 1 # {a="b"} 1\n# EOF\n', 'm 1 # {a="b"} 1\n# EOF\n', '# TYPE m counter\nm_total 1 # {a="b"} 1\n# EOF\n', 'm_bucket{le="1"} 1 # {a="b"} 1\n# EOF\n',
  'm_count 1 # {a="b"} 1\n# EOF\n', 'a_bucket_total 1 # {a="b"} 1\n# EOF\n', '_total 1 # {a="b"} 1\n# EOF\n', 'm_total 1 # {a="b"}\n# EOF\n', 'm_total 1 # {a="b"} x\n# EOF\n',
  'm_total 1 # {a="b"} 1 NaN\n# EOF\n', 'm_total 1 # {a="b"} 1 1 2\n# EOF\n', 'm_total 1 # junk\n# EOF\n', `m_total 1 ${NOW_S} # {a="b"} 1 ${NOW_S}\n# EOF\n`,
  `m_total 1 # {${'a'.repeat(130)}="b"} 1\n# EOF\n`, 'm 1  # {a="b"} 1\n# EOF\n', 'm 1 #{a="b"} 1\n# EOF\n', 'm_total 1 # {a="b",a="c"} 1\n# EOF\n', 'm_total 1 # {} 1\n# EOF\n',
  'm_total 1 # {a="b",} 1\n# EOF\n', 'm_total 1 # {a="b"} NaN\n# EOF\n', 'm_total 1 # {a="b"} 1e309\n# EOF\n', 'm_total 1 # {a="b"} 1 -5\n# EOF\n', 'm_total 1 # {a="b"} 1 1.5 \n# EOF\n',
  'm_total 1 # {a="b"}  1\n# EOF\n', 'm_total 1 # {a="b"}1\n# EOF\n', 'm_total 1 #  {a="b"} 1\n# EOF\n', 'm_total 1 # {a="b"} 1\t2\n# EOF\n', 'm_total 1 # {__name__="x"} 1\n# EOF\n',
  'm_total 1 # {a = "x"} 1\n# EOF\n', 'm_total{a="b # {x"} 1\n# EOF\n', 'm 1 # \n# EOF\n', 'm_total 1 # {a="b"} 1\r\n# EOF\n',
  'm 1\t5\n# EOF\n', 'm  1\n# EOF\n', 'm 1 \n# EOF\n', 'm 1 5 \n# EOF\n', 'm{a="b"}  1\n# EOF\n', 'm {a="b"} 1\n# EOF\n', 'm{ a="b"} 1\n# EOF\n', 'm{a="b" } 1\n# EOF\n',
  'm{a="b",} 1\n# EOF\n', 'm{} 1\n# EOF\n', 'm{a="b"}1\n# EOF\n', 'm 1\r\n# EOF\n', 'm 1\n# EOF\r\n', 'm 1\n\n# EOF\n', ' m 1\n# EOF\n', '# HELP m  x\nm 1\n# EOF\n',
  '# TYPE m info\nm_info{a="b"} 1\n# EOF\n', '# TYPE m stateset\nm{m="a"} 1\n# EOF\n', '# TYPE m counter\nm_total 1\nm_created 1.7e9\n# EOF\n', '# TYPE m gaugehistogram\nm_gcount 1\n# EOF\n',
  '{"m"} 1\n# EOF\n', '{a="b"} 1\n# EOF\n', 'm{a="b",b="c"} 1 # {a="b"} 1\n# EOF\n', 'm_total{a="\\"} 1\n# EOF\n', 'm_total 1 # {a="b"} 1 1.5 # x\n# EOF\n',
  '#  HELP m x\nm 1\n# EOF\n', '# a comment\nm 1\n# EOF\n', '# UNIT m seconds\nm 1\n# EOF\n', '# UNIT m_seconds seconds\nm_seconds 1\n# EOF\n', '# UNIT m_seconds \nm_seconds 1\n# EOF\n',
  '# TYPE m untyped\nm 1\n# EOF\n', '# TYPE m counter \nm_total 1\n# EOF\n', '# HELP m\nm 1\n# EOF\n', '# HELP m \nm 1\n# EOF\n', '#\n# EOF\n', '# EOF\n', '# EOF \n',
];

/** Bodies built from the grammars' tokens and their near misses. */
function randomBodies(seed: number, n: number): Array<{ body: string; om: boolean }> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const maybe = (p: number, s: string): string => (r() < p ? s : '');
  const sep = (): string => (r() < 0.8 ? ' ' : pick(['  ', '\t', '', ' \t']));
  const labels = (): string => pick(['', '', '{a="1"}', '{a="1",b="x y"}', '{}', '{a="1",}', '{ a="1"}', '{a="1" ,b="2"}', '{a="\\t\\"q\\\\"}', '{a="1"', '{a=1}']);
  const ts = (om: boolean): string => {
    const recentMs = NOW_S * 1000 - Math.floor(r() * 20_000);
    if (om) return pick([`${Math.floor(recentMs / 1000)}`, `${recentMs / 1000}`, `${Math.floor(recentMs / 1000)}.${String(Math.floor(r() * 1e7)).padStart(7, '0')}`, `${recentMs}e-3`, '-5', '5', 'NaN', '+Inf', '1e400', '0x1p3']);
    return pick([`${recentMs}`, `${recentMs}`, `0${recentMs}`, `-${recentMs}`, `+${recentMs}`, `${recentMs}.5`, '9223372036854775807', '9223372036854775808', '1e3', '0']);
  };
  const exemplar = (): string => pick([' # {a="b"} 1', ` # {} 0.5 ${NOW_S}.25`, ' # {a="b",} 1', ' # {a="b"}', ' #{a="b"} 1', ' # {a="b"} 1 NaN', ' # {a="b"} 1 1 2', ' # {a="b"} Inf', '  # {a="b"} 1']);
  const sample = (om: boolean): string => {
    const name = pick(['m', 'm_total', 'm_bucket', 'm_seconds', 'm:x', 'm_count']);
    const value = pick(['1', '-0', '1.5e3', 'NaN', '+Inf', 'Infinity', '.5', '5.', '1e309', '0x10', '-1.5E+10', '1_0']);
    let line = `${name}${maybe(0.1, sep())}${labels()}${sep()}${value}`;
    if (r() < 0.4) line += `${sep()}${ts(om)}`;
    if (r() < (om ? 0.3 : 0.05)) line += exemplar();
    return line + (r() < 0.1 ? pick([' ', '\t', '\r']) : '');
  };
  const comment = (om: boolean): string => pick(['# HELP m help text', '# TYPE m gauge', '# TYPE m_total counter', '# TYPE m counter', '# UNIT m_seconds seconds', '# UNIT m seconds',
    '# a comment', '#\tHELP m x', '# TYPE m untyped', '# TYPE m unknown', '', ' ', om ? '# HELP m' : '# HELP m\tx']);
  const out: Array<{ body: string; om: boolean }> = [];
  for (let i = 0; i < n; i++) {
    const om = r() < 0.5;
    const lines: string[] = [];
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) lines.push(r() < 0.25 ? comment(om) : sample(om));
    let body = lines.join('\n');
    if (om) body += pick(['\n# EOF\n', '\n# EOF\n', '\n# EOF', '\n', '\n# EOF\n\n']);
    else body += pick(['\n', '\n', '']);
    out.push({ body, om });
  }
  return out;
}

const SEED = scheduleSeed('AUDIT9_PROM_TEXT_SEED', 'exposition grammar bodies');
const ALL: Array<{ body: string; om: boolean }> = [...TEXT.map((body) => ({ body, om: false })), ...OM.map((body) => ({ body, om: true })), ...randomBodies(SEED, 160)];

let peer: ExpositionTargets;

beforeAll(async () => {
  peer = await startExpositionTargets(ALL);
}, 60_000);

afterAll(async () => {
  await peer?.stop();
});

type Series = { metric: Record<string, string>; values: Array<[number, string]> };

/** An endpoint answering `body()` with `type`, a recording server scraping it every 50 ms, and the archive's batches of a path. */
async function scraped(type: string, body: () => string, run: (s: { server: RunningServer; url: string; batchesOf(path: string): Promise<Batch[]> }) => Promise<void>): Promise<void> {
  const ep = createServer((_req, res) => void res.writeHead(200, { 'content-type': type }).end(body()));
  await new Promise<void>((resolve) => ep.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(ep.address() as AddressInfo).port}/metrics`;
  const server = await recordingServer({ sources: [{ name: 'edge', type: 'prometheus-scrape', targets: [url], interval: '50ms' }] });
  const batchesOf = async (path: string): Promise<Batch[]> => {
    await server.archive.writer?.flush();
    const c = server.archive.cursor({ filter: [path] });
    await c.seek('beginning');
    const out: Batch[] = [];
    for (let b = await c.next(); b; b = await c.next()) out.push(b);
    return out;
  };
  try {
    await run({ server, url, batchesOf });
  } finally {
    await server.close();
    ep.closeAllConnections();
    await new Promise<void>((resolve) => ep.close(() => resolve()));
  }
}

/** Waits until the source's scraper has polled n more times than now. */
async function morePolls(server: RunningServer, n: number): Promise<void> {
  const scraper = (server.sources[0] as PromScrapeSource).scrapers[0];
  const from = scraper?.health().polls ?? 0;
  await waitFor(async () => (scraper?.health().polls ?? 0) >= from + n || undefined, 10_000, `${n} scrapes`);
}

/** A series as `name{labels}` with its labels sorted, without the target's. */
function key(name: string, labels: ReadonlyArray<readonly [string, string]>): string {
  return `${name}{${labels.filter((l) => l[1] !== '').map((l) => `${l[0]}=${JSON.stringify(l[1])}`).sort().join(',')}}`;
}

describe('the exposition grammars, Tapedeck against Prometheus 2.42', () => {
  it('takes and refuses the same bodies, with the same values and times (ms)', async () => {
    await until(async () => (await peer.targets()).filter((t) => t.health !== 'unknown').length === ALL.length, 30_000, 'every target scraped once');
    const byJob = new Map((await peer.targets()).map((t) => [t.labels.job, t]));
    let up = 0;
    let timed = 0;
    for (let i = 0; i < ALL.length; i++) {
      const { body, om } = ALL[i] as { body: string; om: boolean };
      const t = byJob.get(`t${i}`) as ScrapeTarget;
      const shown = `${om ? 'OpenMetrics' : 'text'} ${JSON.stringify(body)} (seed ${SEED})`;
      let ours: ReturnType<typeof parseExposition> | undefined;
      let refusal = '';
      try {
        ours = parseExposition(expositionText(Buffer.from(body)), { samplesMax: 1000, lineBytesMax: 10_000 }, om);
      } catch (err) {
        refusal = (err as Error).message;
      }
      expect(ours !== undefined, `${shown}: Prometheus ${t.health} (${t.lastError}), Tapedeck ${refusal || 'took it'}`).toBe(t.health === 'up');
      if (!ours) continue;
      up++;
      const q = new URLSearchParams({ query: `{job="t${i}",__name__=~"m.*|_total|a_.*"}[1h]` });
      const result = ((await (await fetch(`${peer.prom.url}/api/v1/query?${q.toString()}`)).json()) as { data: { result: Series[] } }).data.result;
      const theirs = new Map(result.map((s) => {
        const { __name__: name, job: _j, instance: _i, ...labels } = s.metric;
        return [key(name as string, Object.entries(labels)), s.values[0] as [number, string]];
      }));
      // A series exposed twice is appended twice in Prometheus: a sample at or before the
      // series' last one taken is left out, and one out of bounds does not count (the
      // answer's first value is the first sample taken).
      const lastOf = new Map<string, number>();
      const outOfBounds = new Set<string>();
      let kept = 0;
      for (const s of ours) {
        const k = key(s.name, s.labels);
        const ms = s.tsUs === undefined ? undefined : Math.floor(s.tsUs / 1000);
        const last = lastOf.get(k);
        if (last !== undefined && (ms ?? Infinity) <= last) continue;
        // Prometheus keeps only times near its head; Tapedeck's scraper leaves out those before the epoch or in the future.
        if (ms !== undefined && (ms < (NOW_S - 600) * 1000 || ms > Date.now())) {
          outOfBounds.add(k);
          continue;
        }
        lastOf.set(k, ms ?? Infinity);
        if (last !== undefined) continue; // taken too, after the first: the first is values[0]
        kept++;
        const [at, v] = theirs.get(k) ?? [NaN, 'missing'];
        expect(v, `${shown}: ${k}`).toBe(formatValue(s.value));
        if (ms !== undefined) {
          timed++;
          expect(Math.round(at * 1000), `${shown}: ${k}'s time`).toBe(ms);
        }
      }
      for (const k of outOfBounds) if (!lastOf.has(k)) expect(theirs.has(k), `${shown}: ${k} out of bounds only`).toBe(false);
      expect(theirs.size, `${shown}: Prometheus' series ${[...theirs.keys()].join(' ')}`).toBe(kept);
    }
    expect(up).toBeGreaterThan(60);
    expect(timed).toBeGreaterThan(10);
  }, 60_000);

  it('keeps an OpenMetrics time to the µs, from its digits, and refuses a signed or non-digit text-format one', () => {
    const limits = { samplesMax: 10, lineBytesMax: 1000 };
    const om = (ts: string): number | undefined => parseExposition(`m 1 ${ts}\n# EOF\n`, limits, true)[0]?.tsUs;
    expect(om('1700000000.123456')).toBe(1700000000123456);
    expect(om('1700000000.1239')).toBe(1700000000123900);
    expect(om('1700000000.0000019')).toBe(1700000000000001);
    expect(om('1.7000000001234567e9')).toBe(1700000000123456);
    expect(om('-0.0000005')).toBe(-1);
    expect(om('-0')).toBe(0);
    expect(om('1e300')).toBe(Infinity);
    expect(() => om('1e400'), 'a range error, as Go refuses it').toThrow(/not a timestamp/);
    expect(om('1e-400000000000')).toBe(0);
    expect(parseExposition('m 1 1700000000123\n', limits)[0]?.tsUs).toBe(1700000000123000);
    for (const ts of ['-5', '-0', '+5', '1e3', '9223372036854775808']) expect(() => parseExposition(`m 1 ${ts}\n`, limits), ts).toThrow(/line 1: .*timestamp/);
  });

  it('records an OpenMetrics sample at its own time to the µs, and leaves out one before the epoch', async () => {
    const us = (NOW_S - 5) * 1_000_000 + 123_456;
    const body = `# TYPE m counter\nm_total 7 ${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')} # {trace_id="a"} 1\nold_total 8 -1.5\n# EOF\n`;
    await scraped('application/openmetrics-text; version=1.0.0; charset=utf-8', () => body, async ({ server, url, batchesOf }) => {
      const labels = { job: 'edge', instance: new URL(url).host };
      await morePolls(server, 3);
      const path = seriesToPath({ name: 'm_total', labels });
      expect(await batchesOf(path)).toEqual([{ ts: us, updates: [[path, 7]] }]);
      expect(await batchesOf(seriesToPath({ name: 'old_total', labels }))).toEqual([]);
    });
  });

  it('leaves out a timestamped sample older than the target\'s last scrape instead of recording it at another time', async () => {
    const t1Ms = Date.now() - 60_000;
    let body = `m 1 ${t1Ms}\n`;
    await scraped('text/plain; version=0.0.4', () => body, async ({ server, url, batchesOf }) => {
      const path = seriesToPath({ name: 'm', labels: { job: 'edge', instance: new URL(url).host } });
      await morePolls(server, 2);
      // A later sample whose time is still before the scrape that recorded the first one (an exporter that lags).
      body = `m 2 ${t1Ms + 1000}\n`;
      await morePolls(server, 3);
      expect(await batchesOf(path)).toEqual([{ ts: t1Ms * 1000, updates: [[path, 1]] }]);
    });
  });
});
