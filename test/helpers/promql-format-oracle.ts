/**
 * The query answers' JSON as server/promql/format.ts wrote it up to 2026-12-03 (18:40):
 * template strings joined per point, every value through String(v); since 2026-12-06 with
 * Prometheus 2.42's sample times (three decimals) and scalar values (no exponent), as the
 * real one writes them. Kept as the oracle that the one-pass writer's bytes
 * are compared with (test/promql-format.test.ts).
 */
import type { QueryResult } from '../../server/promql/engine.js';
import type { Metric } from '../../server/promql/labels.js';

/**
 * A value as Prometheus 2.42 writes it: Go's FormatFloat 'f' -1, and 'e' -1 below 1e-6 and
 * from 1e21 (format.ts up to 2026-12-04 expanded those exponents, which the real Prometheus
 * does not: test/values-edge-prom-text.test.ts).
 */
export function formatValueOracle(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  return String(v).replace(/e([+-])(\d)$/, 'e$10$2');
}

function formatTime(ms: number): string {
  return String(ms / 1000);
}

/** A sample's time as Prometheus 2.42 writes it (checked against it, 2026-12-06): `.510`, not `.51`. */
function formatStamp(ms: number): string {
  if (!Number.isSafeInteger(ms)) return formatTime(ms);
  const whole = Math.floor(Math.abs(ms) / 1000);
  const frac = Math.abs(ms) % 1000;
  return `${ms < 0 ? '-' : ''}${whole}${frac === 0 ? '' : `.${`00${frac}`.slice(-3)}`}`;
}

/** A scalar's value as Prometheus 2.42 writes it (FormatFloat 'f' -1: `1e-7` is "0.0000001"), by decimal arithmetic on the digits. */
function formatScalarOracle(v: number): string {
  const s = formatValueOracle(v);
  const m = /^(-?)([\d.]+)e([+-])0?(\d+)$/.exec(s);
  if (!m) return s;
  const [int, frac = ''] = (m[2] as string).split('.');
  let digits = `${int}${frac}`;
  let point = (int as string).length + (m[3] === '-' ? -Number(m[4]) : Number(m[4]));
  while (point <= 0) {
    digits = `0${digits}`;
    point++;
  }
  while (digits.length < point) digits += '0';
  const out = point === digits.length ? digits : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return `${m[1]}${out.replace(/^0+(?=\d)/, '')}`;
}

function metricJson(m: Metric): string {
  let out = '{';
  for (let i = 0; i < m.labels.length; i++) {
    const [n, v] = m.labels[i] as readonly [string, string];
    out += `${i === 0 ? '' : ','}${JSON.stringify(n)}:${JSON.stringify(v)}`;
  }
  return `${out}}`;
}

export function formatResultOracle(r: QueryResult): string {
  let body: string;
  if (r.resultType === 'scalar') body = `[${formatTime(r.t)},"${formatScalarOracle(r.v)}"]`;
  else if (r.resultType === 'vector') {
    const ts = formatStamp(r.t);
    body = `[${r.samples.map((s) => `{"metric":${metricJson(s.metric)},"value":[${ts},"${formatValueOracle(s.v)}"]}`).join(',')}]`;
  } else {
    const parts: string[] = [];
    for (const s of r.series) {
      const points: string[] = new Array<string>(s.t.length);
      for (let i = 0; i < s.t.length; i++) points[i] = `[${formatStamp(s.t[i] as number)},"${formatValueOracle(s.v[i] as number)}"]`;
      // 2.42 writes no "values" for a series of no points (marshalSeriesJSON).
      parts.push(points.length === 0 ? `{"metric":${metricJson(s.metric)}}` : `{"metric":${metricJson(s.metric)},"values":[${points.join(',')}]}`);
    }
    body = `[${parts.join(',')}]`;
  }
  return `{"status":"success","data":{"resultType":"${r.resultType}","result":${body}}}`;
}
