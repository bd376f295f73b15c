/**
 * The query answers' JSON as server/promql/format.ts wrote it up to 2026-12-03 (18:40):
 * template strings joined per point. Kept as the oracle that the one-pass writer's bytes
 * are compared with (test/promql-format.test.ts).
 */
import type { QueryResult } from '../../server/promql/engine.js';
import { formatValue } from '../../server/promql/format.js';
import type { Metric } from '../../server/promql/labels.js';

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

export function formatResultOracle(r: QueryResult): string {
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
