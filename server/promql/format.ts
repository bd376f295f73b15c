/**
 * Prometheus' JSON for query results (web/api/v1): `{"status":"success","data":{...}}`,
 * times as seconds (JSON numbers; a sample's with three decimals when it has a fraction,
 * promTimestamp), values as strings the way Prometheus writes them (formatValue: shortest
 * round-trip digits, an exponent below 1e-6 and from 1e21; "NaN", "+Inf", "-Inf"; a
 * scalar's never with an exponent, formatScalarValue). Written as bytes in one pass: results can be large and
 * this is the hot path of a dashboard.
 */
import type { QueryResult } from './engine.js';
import type { MatrixSeries, Sample } from './eval.js';
import type { Metric } from './labels.js';

/** Decimals of the values written from an integer (shortDecimal), and 10 to that power. */
const SHORT_DECIMALS = 6;
const SHORT_SCALE = 1e6;
/** Below this a scaled value's rounding error (under 1/16) cannot pick a wrong integer. */
const SCALED_MAX = 2 ** 50;

/**
 * A value with at most 6 decimals as that decimal: n = round(|v| * 10^6) when n / 10^6 gives
 * back |v|, then its trailing zeros dropped (k decimals left). Exactly String(v)'s digits:
 * n / 10^k is a correctly rounded division, so that decimal round-trips; no shorter one
 * does (a decimal of k' < k digits that round-trips would be within 1/8 of
 * |v| * 10^6 < 2^50 once scaled, so it would be n, with 6 - k' trailing zeros); and no
 * other of k decimals does (two such would be 10^-k apart, far more than an ulp of |v|).
 * String(v) is the shortest round-trip text, so it is this one. One multiplication and one
 * division decide, so other values lose little; gauge readings (20.7, 0.25), the most
 * frequent values of an answer, are written 2.3x faster than by String(v). Undefined for
 * any other value (NaN, infinities, zeros, more decimals, |v| from 2^50 / 10^6 or below 10^-6).
 */
function shortDecimal(v: number): string | undefined {
  const a = v < 0 ? -v : v;
  if (!(a >= 1e-6 && a < SCALED_MAX / SHORT_SCALE)) return undefined;
  let n = Math.round(a * SHORT_SCALE);
  if (n / SHORT_SCALE !== a) return undefined;
  let k = SHORT_DECIMALS;
  while (k > 0 && n % 10 === 0) {
    n /= 10;
    k--;
  }
  let digits = String(n);
  if (k > 0) {
    if (digits.length <= k) digits = '0'.repeat(k - digits.length + 1) + digits;
    digits = `${digits.slice(0, digits.length - k)}.${digits.slice(digits.length - k)}`;
  }
  return v < 0 ? `-${digits}` : digits;
}

/**
 * A value as Prometheus' API writes it (web/api/v1 marshalValue): Go's
 * FormatFloat(v, 'f', -1, 64), or 'e' below 1e-6 and from 1e21 (`1e-07`, `1e+21`,
 * `5e-324`), "NaN", "+Inf", "-Inf". JavaScript's String(v) has the same shortest digits and
 * switches to an exponent at the same magnitudes; Go writes at least two exponent digits.
 */
export function formatValue(v: number): string {
  const short = shortDecimal(v);
  if (short !== undefined) return short;
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const e = s.indexOf('e');
  // `1e-7` is Go's `1e-07`.
  if (e < 0 || s.length - e > 3) return s;
  return `${s.slice(0, e + 2)}0${s.slice(e + 2)}`;
}

/** Bytes of a point but for its value's text: `[`, seconds, `,"`, `"]` and a comma. */
const POINT_BYTES = 24;

/**
 * An answer's bytes written in one pass: no template string per point, no arrays of them to
 * join, no text to encode afterwards (25 % less CPU than that for a day of one series at
 * step 120 s). Numbers' texts are still V8's String() (its number-to-string cache and
 * shortest round-trip digits; writing seconds digit by digit here was slower), copied byte
 * by byte; label names and values, the only text from outside, as the UTF-8 of their
 * JSON.stringify.
 */
class JsonBytes {
  private buf: Buffer;
  private pos = 0;

  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, bytes));
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A string of ASCII characters only (ours, numbers' texts). */
  ascii(s: string): void {
    this.room(s.length);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    this.pos = pos;
  }

  /** Any text, as UTF-8 (JSON.stringify's output: lone surrogates are escaped, so well-formed). */
  text(s: string): void {
    this.room(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** Milliseconds as Prometheus' seconds, a JSON number: String(ms / 1000). */
  seconds(ms: number): void {
    this.ascii(String(ms / 1000));
  }

  /** A point's or vector sample's time as Prometheus writes it (jsonutil.MarshalTimestamp). */
  stamp(ms: number): void {
    this.ascii(promTimestamp(ms));
  }

  /** A scalar's value: Prometheus writes it with FormatFloat 'f' (no exponent), unlike samples. */
  scalarValue(v: number): void {
    const s = formatScalarValue(v);
    this.room(s.length + 2);
    this.ascii(`"${s}"`);
  }

  /** One point of a series, `[seconds,"value"]`, after a comma unless it is the first. */
  point(first: boolean, ms: number, v: number): void {
    const ts = promTimestamp(ms);
    const vs = formatValue(v);
    this.room(ts.length + vs.length + 6);
    const buf = this.buf;
    let pos = this.pos;
    if (!first) buf[pos++] = 0x2c; // ,
    buf[pos++] = 0x5b; // [
    for (let i = 0; i < ts.length; i++) buf[pos++] = ts.charCodeAt(i);
    buf[pos++] = 0x2c;
    buf[pos++] = 0x22; // "
    for (let i = 0; i < vs.length; i++) buf[pos++] = vs.charCodeAt(i);
    buf[pos++] = 0x22;
    buf[pos++] = 0x5d; // ]
    this.pos = pos;
  }

  /** A sample's value: the string Prometheus writes, in quotes. */
  value(v: number): void {
    const s = formatValue(v);
    this.room(s.length + 2);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = 0x22; // "
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    buf[pos++] = 0x22;
    this.pos = pos;
  }

  metric(m: Metric): void {
    this.ascii('{');
    for (let i = 0; i < m.labels.length; i++) {
      const [n, v] = m.labels[i] as readonly [string, string];
      if (i > 0) this.ascii(',');
      this.text(JSON.stringify(n));
      this.ascii(':');
      this.text(JSON.stringify(v));
    }
    this.ascii('}');
  }

  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** A first guess of an answer's size, so that most answers are written without growing. */
function estimateBytes(r: QueryResult): number {
  if (r.resultType === 'scalar') return 128;
  let n = 96;
  if (r.resultType === 'vector') {
    for (const s of r.samples) n += 48 + s.metric.key.length + 4 * s.metric.labels.length;
  } else {
    for (const s of r.series) n += 32 + s.metric.key.length + 4 * s.metric.labels.length + s.t.length * (POINT_BYTES + 8);
  }
  return n;
}

/**
 * Milliseconds as Prometheus writes a sample's time (jsonutil.MarshalTimestamp): whole
 * seconds, then `.` and three digits when there is a fraction (`1700000106.510`, never
 * `.51`). A scalar's time is a plain float (Go's encoding/json), written by `seconds`.
 */
export function promTimestamp(ms: number): string {
  if (!Number.isSafeInteger(ms)) return String(ms / 1000);
  const t = Math.abs(ms);
  const whole = Math.floor(t / 1000);
  const frac = t - whole * 1000;
  const body = frac === 0 ? String(whole) : `${whole}.${String(frac).padStart(3, '0')}`;
  return ms < 0 ? `-${body}` : body;
}

/** A scalar's value as Prometheus writes it (strconv.FormatFloat 'f', -1): shortest digits, never an exponent. */
export function formatScalarValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const digits = (m[2] as string) + (m[3] ?? '');
  const point = 1 + Number(m[4]); // where the decimal point falls in `digits`
  if (point <= 0) return `${m[1]}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${m[1]}${digits}${'0'.repeat(point - digits.length)}`;
  return `${m[1]}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** An answer as Prometheus' JSON, UTF-8 bytes ready to send. */
export function formatResultBytes(r: QueryResult): Buffer {
  const out = new JsonBytes(estimateBytes(r));
  out.ascii(`{"status":"success","data":{"resultType":"${r.resultType}","result":`);
  if (r.resultType === 'scalar') {
    out.ascii('[');
    out.seconds(r.t);
    out.ascii(',');
    out.scalarValue(r.v);
    out.ascii(']');
  } else if (r.resultType === 'vector') {
    out.ascii('[');
    for (let i = 0; i < r.samples.length; i++) {
      const s = r.samples[i] as Sample;
      out.ascii(i === 0 ? '{"metric":' : ',{"metric":');
      out.metric(s.metric);
      out.ascii(',"value":[');
      out.stamp(r.t);
      out.ascii(',');
      out.value(s.v);
      out.ascii(']}');
    }
    out.ascii(']');
  } else {
    out.ascii('[');
    for (let k = 0; k < r.series.length; k++) {
      const s = r.series[k] as MatrixSeries;
      out.ascii(k === 0 ? '{"metric":' : ',{"metric":');
      out.metric(s.metric);
      const t = s.t;
      const v = s.v;
      // A series of no points has no "values" (2.42's marshalSeriesJSON): absent_over_time's
      // answer in a subquery of no step, read as a bare subquery (subquery.ts).
      if (t.length > 0) {
        out.ascii(',"values":[');
        for (let i = 0; i < t.length; i++) out.point(i === 0, t[i] as number, v[i] as number);
        out.ascii(']');
      }
      out.ascii('}');
    }
    out.ascii(']');
  }
  out.ascii('}}');
  return out.done();
}

/** The same answer as text (tests, and callers that want a string). */
export function formatResult(r: QueryResult): string {
  return formatResultBytes(r).toString('utf8');
}

export function successJson(data: unknown): string {
  return JSON.stringify({ status: 'success', data });
}

export function errorJson(errorType: string, error: string): string {
  return JSON.stringify({ status: 'error', errorType, error });
}
