/**
 * The text exposition format against the real Prometheus (Debian's 2.42, test/helpers/
 * prometheus.ts): each exposition below is served to it as one scrape target and to
 * parseExposition (protocol/prom-text.ts). A target Prometheus scrapes (up) is parsed by
 * Tapedeck to the same series and values (its value text, formatValue's, equal to
 * Prometheus' answer); a target Prometheus refuses (down) is refused by Tapedeck too, so a
 * scrape never half-records what Prometheus would not, and never refuses what it would keep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../protocol/prom-text.js';
import { formatValue } from '../server/promql/format.js';
import { expositionText, seriesLabels } from '../server/sources/prom-scrape.js';
import { startExpositionTargets, type ExpositionTargets, type ScrapeTarget } from './helpers/prom-targets.js';
import { until } from './helpers/until.js';

/** Bodies, one a target; `m` is the metric every body exposes (plus other lines). */
const BODIES: Array<string | Buffer> = [
  ...['1', '-0', '+.5', '5.', '1e-400', '5e-324', '162132490.6591326', '0.30000000000000004', '1e21', '1.7976931348623157e308', '-1.5E+10'].map((v) => `m ${v}\n`),
  ...['NaN', 'nan', 'Nan', 'Inf', '+Inf', '-Inf', 'inf', '+inf', 'Infinity', '+infinity', '-INFINITY'].map((v) => `m ${v}\n`),
  // Refused by Go's ParseFloat or by Prometheus' own check.
  ...['1e309', '-1.8e308', '+nan', '-nan', '0x10', '0x1p3', '1_0', 'infin', 'Inf1', '1e', '--1', '٣'].map((v) => `m ${v}\n`),
  'm{a="x\\ny",b="q\\"uo\\\\te"} 1\n',
  'm{a="é 😀"} 2\n',
  'm{a="1",a="2"} 1\n',
  'm{__name__="x"} 1\n',
  'm{a="1"} 1 +5\n',
  'm{a="1"} 1 1.5\n',
  'm{a="\\t"} 1\n',
  // Exposed labels the target's displace (job, instance), kept as exported_..., again prefixed when taken.
  'm{job="x",exported_job="y",instance="i",b=""} 1\n',
  'm{exported_exported_job="z",job="x",exported_job="y"} 2\n',
  'm{exported_instance="q",instance="i",job=""} 3\n',
  'm{a="\\\\t\\a\\u00e9\\\\"} 1\n',
  'm{a="x\\"} 1\n',
  '# HELP m the help\n# TYPE m gauge\nm{a="1"} 3\n',
  '# TYPE m nosuchtype\nm 1\n',
  Buffer.concat([Buffer.from('m{a="'), Buffer.from([0x61, 0xff]), Buffer.from('"} 1\n')]),
  Buffer.concat([Buffer.from('# HELP m h'), Buffer.from([0xe9]), Buffer.from('lp\nm 4\n')]),
  Buffer.concat([Buffer.from('# a free comment '), Buffer.from([0xe9]), Buffer.from('\nm 5\n')]),
];

/** OpenMetrics bodies (served as application/openmetrics-text), after BODIES. */
const OM_BODIES: string[] = [
  'm 1\n# EOF\n',
  'm 1\n',
  'm 1\n# EOF',
  '# TYPE m counter\nm_total{a="x"} 2.5 # {trace_id="abc"} 1.0\nm{a="y"} 1\n# EOF\n',
  'm Infinity\n# EOF\n',
  'm 1e309\n# EOF\n',
  'm{a="\\t"} 3\n# EOF\n',
  'm 4\n# EOF\nm 5\n',
];
const ALL: Array<{ body: string | Buffer; om: boolean }> = [...BODIES.map((body) => ({ body, om: false })), ...OM_BODIES.map((body) => ({ body, om: true }))];

let peer: ExpositionTargets;
let base = '';
let instance = '';
const targets = (): Promise<ScrapeTarget[]> => peer.targets();

beforeAll(async () => {
  peer = await startExpositionTargets(ALL);
  base = peer.prom.url;
  instance = peer.instance;
}, 60_000);

afterAll(async () => {
  await peer?.stop();
});

describe('the text exposition format, Tapedeck against Prometheus', () => {
  it('takes what Prometheus takes, with the same values, and refuses what it refuses', async () => {
    await until(async () => (await targets()).filter((t) => t.health !== 'unknown').length === ALL.length, 30_000, 'every target scraped once');
    const byJob = new Map((await targets()).map((t) => [t.labels.job, t]));
    const limits = { samplesMax: 1000, lineBytesMax: 10_000 };
    let up = 0;
    for (let i = 0; i < ALL.length; i++) {
      const { body, om } = ALL[i] as { body: string | Buffer; om: boolean };
      const t = byJob.get(`t${i}`) as ScrapeTarget;
      const shown = JSON.stringify(body.toString());
      let ours: ReturnType<typeof parseExposition> | undefined;
      let refusal = '';
      try {
        ours = parseExposition(expositionText(Buffer.from(body)), limits, om);
      } catch (err) {
        refusal = (err as Error).message;
      }
      expect(ours !== undefined, `${shown}: Prometheus ${t.health} (${t.lastError}), Tapedeck ${refusal || 'took it'}`).toBe(t.health === 'up');
      if (!ours) continue;
      up++;
      const res = await fetch(`${base}/api/v1/query?${new URLSearchParams({ query: `{job="t${i}",__name__="m"}` }).toString()}`);
      const result = ((await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
      const sorted = (o: Record<string, string>): Array<[string, string]> => Object.entries(o).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      const theirs = result.map((r) => {
        const { __name__: _n, ...labels } = r.metric;
        return JSON.stringify([sorted(labels), r.value[1]]);
      }).sort();
      // The series' labels as the scraper records them: with the target's, exported_ where they clash.
      const mine = ours.filter((s) => s.name === 'm').map((s) => JSON.stringify([sorted(seriesLabels(s.labels, { job: `t${i}`, instance })), formatValue(s.value)])).sort();
      expect(mine, shown).toEqual(theirs);
    }
    expect(up).toBeGreaterThan(20);
  });
});
