/**
 * Prometheus' JSON for query results (web/api/v1): `{"status":"success","data":{...}}`,
 * times as seconds (JSON numbers), values as strings the way Go's
 * strconv.FormatFloat(v, 'f', -1, 64) writes them (shortest round-trip digits, never an
 * exponent; "NaN", "+Inf", "-Inf"). Built as text: results can be large and this is the
 * hot path of a dashboard.
 */
import type { QueryResult } from './engine.js';
import type { Metric } from './labels.js';

/** Go's FormatFloat(v, 'f', -1, 64). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const e = s.indexOf('e');
  if (e < 0) return s;
  // Expand d.ddde±x: move the point by the exponent.
  const neg = s.startsWith('-');
  const mantissa = s.slice(neg ? 1 : 0, e);
  const exp = Number(s.slice(e + 1));
  const [int, frac = ''] = mantissa.split('.');
  const digits = `${int}${frac}`;
  const point = (int as string).length + exp;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = `${digits}${'0'.repeat(point - digits.length)}`;
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return neg ? `-${out}` : out;
}

/** Milliseconds as Prometheus' seconds (a JSON number). */
function formatTime(ms: number): string {
  return String(ms / 1000);
}

function metricJson(m: Metric): string {
  let out = '{';
  for (let i = 0; i < m.labels.length; i++) {
    const [n, v] = m.labels[i] as readonly [string, string];
    out += `${i === 0 ? '' : ','}${JSON.stringify(n)}:${JSON.stringify(v)}`;
  }
  return `${out}}`;
}

export function formatResult(r: QueryResult): string {
  let body: string;
  if (r.resultType === 'scalar') body = `[${formatTime(r.t)},"${formatValue(r.v)}"]`;
  else if (r.resultType === 'vector') {
    const ts = formatTime(r.t);
    body = `[${r.samples.map((s) => `{"metric":${metricJson(s.metric)},"value":[${ts},"${formatValue(s.v)}"]}`).join(',')}]`;
  } else {
    const parts: string[] = [];
    for (const s of r.series) {
      const points: string[] = new Array<string>(s.t.length);
      for (let i = 0; i < s.t.length; i++) points[i] = `[${formatTime(s.t[i] as number)},"${formatValue(s.v[i] as number)}"]`;
      parts.push(`{"metric":${metricJson(s.metric)},"values":[${points.join(',')}]}`);
    }
    body = `[${parts.join(',')}]`;
  }
  return `{"status":"success","data":{"resultType":"${r.resultType}","result":${body}}}`;
}

export function successJson(data: unknown): string {
  return JSON.stringify({ status: 'success', data });
}

export function errorJson(errorType: string, error: string): string {
  return JSON.stringify({ status: 'error', errorType, error });
}
