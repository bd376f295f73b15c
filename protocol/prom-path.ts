/**
 * Prometheus series <-> Tapedeck paths, reversibly (docs/prometheus.md). Pure.
 *
 * A series `name{b="2",a="1"}` is the path `/prom/name/a=1/b=2`: the prefix, the metric
 * name, then one segment per label sorted by label name, `name=value`. Labels with an empty
 * value are absent (Prometheus' own rule). Every segment is escaped so that the path is
 * unambiguous and globs read it literally: `%` and the bytes `/`, `=`, the glob's
 * `* ? [ ] { }`, and control characters become `%XX` (UTF-8 bytes, upper-case hex); every
 * other character is kept as it is. So `/prom/http_requests_total/**` selects every series
 * of one metric and `/prom/up/job=node/*` every series of job "node" with one more label.
 */

export interface Labels {
  readonly [name: string]: string;
}

export interface Series {
  /** The metric name (`__name__`). */
  name: string;
  /** The other labels, without `__name__`; no empty values. */
  labels: Labels;
}

export const PROM_PATH_PREFIX = '/prom';

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[%/=*?[\]{}\u0000-\u001f\u007f]/;
const ESCAPE_ALL = new RegExp(NEEDS_ESCAPE.source, 'g');

/** One name or value as a path segment (part). */
export function escapeSegment(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(ESCAPE_ALL, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The inverse of escapeSegment; undefined when `s` is not something escapeSegment writes. */
export function unescapeSegment(s: string): string | undefined {
  if (!s.includes('%')) return NEEDS_ESCAPE.test(s) ? undefined : s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c !== '%') {
      if (NEEDS_ESCAPE.test(c)) return undefined;
      out += c;
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (!NEEDS_ESCAPE.test(ch)) return undefined; // only escaped what needs it: one spelling per value
    out += ch;
    i += 2;
  }
  return out;
}

/** The path of a series; labels sorted by name, empty values dropped. */
export function seriesToPath(s: Series, prefix = PROM_PATH_PREFIX): string {
  let path = `${prefix}/${escapeSegment(s.name)}`;
  for (const k of Object.keys(s.labels).sort()) {
    const v = s.labels[k] as string;
    if (v === '' || k === '__name__') continue;
    path += `/${escapeSegment(k)}=${escapeSegment(v)}`;
  }
  return path;
}

/** The series a path names, or undefined when it is not a series path under `prefix`. */
export function pathToSeries(path: string, prefix = PROM_PATH_PREFIX): Series | undefined {
  if (!path.startsWith(`${prefix}/`)) return undefined;
  const parts = path.slice(prefix.length + 1).split('/');
  const name = unescapeSegment(parts[0] as string);
  if (name === undefined || name === '') return undefined;
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  let last = '';
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i] as string;
    const eq = seg.indexOf('=');
    if (eq <= 0) return undefined;
    const k = unescapeSegment(seg.slice(0, eq));
    const v = unescapeSegment(seg.slice(eq + 1));
    // Sorted, unique, non-empty: exactly what seriesToPath writes, so the mapping is one to one.
    if (k === undefined || v === undefined || v === '' || k === '__name__' || (i > 1 && k <= last)) return undefined;
    labels[k] = v;
    last = k;
  }
  return { name, labels: { ...labels } };
}

/** A label and its value, as in a Prometheus label set. */
export type LabelPair = readonly [name: string, value: string];

/** `__name__`, the label holding the metric name in a label set. */
const NAME_LABEL = '__name__';

/**
 * The label set a path names, `__name__` included, sorted by label name (Prometheus' order:
 * UTF-16 code units, as Array.prototype.sort and `<` compare), or undefined when it is not a
 * series path under `prefix`: accepts exactly the paths pathToSeries accepts, with the same
 * labels, without a dictionary object per path (a query's series catalog reads every path of
 * the archive through this).
 */
export function pathToLabelPairs(path: string, prefix = PROM_PATH_PREFIX): LabelPair[] | undefined {
  const from = prefix.length + 1;
  if (path.length < from || path.charCodeAt(prefix.length) !== 0x2f || !path.startsWith(prefix)) return undefined;
  let end = path.indexOf('/', from);
  if (end < 0) end = path.length;
  const name = unescapeSegment(path.slice(from, end));
  if (name === undefined || name === '') return undefined;
  const pairs: LabelPair[] = [];
  let named = false;
  let last: string | undefined;
  while (end < path.length) {
    const start = end + 1;
    end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    const eq = path.indexOf('=', start);
    if (eq < 0 || eq >= end || eq === start) return undefined;
    const k = unescapeSegment(path.slice(start, eq));
    const v = unescapeSegment(path.slice(eq + 1, end));
    // Sorted, unique, non-empty: exactly what seriesToPath writes (pathToSeries' rule).
    if (k === undefined || v === undefined || v === '' || k === NAME_LABEL || (last !== undefined && k <= last)) return undefined;
    if (!named && k > NAME_LABEL) {
      pairs.push([NAME_LABEL, name]);
      named = true;
    }
    pairs.push([k, v]);
    last = k;
  }
  if (!named) pairs.push([NAME_LABEL, name]);
  return pairs;
}
