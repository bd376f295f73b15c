// The unit of a path, for one y axis per unit in a panel. A unit from the path's metadata
// wins (Charts.setUnits, for archives that carry it); else a rule on the last path segment:
// its suffix after a trailing "_total" is dropped ("rx_bytes_total" is bytes). The first
// matching suffix of UNIT_RULES, compared case-insensitively, names the unit; no match is
// the empty unit (one shared axis for all unit-less series). Pure, tested in Node.

/** [suffix, unit], most specific first (so "_bytes_per_s" is B/s, not "/s"). */
export const UNIT_RULES = Object.freeze([
  ['_pct', '%'], ['_percent', '%'], ['%', '%'],
  ['_ratio', 'ratio'],
  ['_bytes_per_s', 'B/s'], ['_bytes_per_second', 'B/s'],
  ['_bytes', 'B'],
  ['_gbps', 'Gbit/s'], ['_mbps', 'Mbit/s'], ['_kbps', 'kbit/s'], ['_bps', 'bit/s'],
  ['_pps', 'packets/s'], ['_pkts', 'packets'], ['_packets', 'packets'],
  ['_per_s', '/s'], ['_per_second', '/s'],
  ['_celsius', '°C'], ['_c', '°C'],
  ['_ns', 'ns'], ['_us', 'µs'], ['_ms', 'ms'], ['_seconds', 's'], ['_sec', 's'], ['_s', 's'],
  ['_hz', 'Hz'], ['_dbm', 'dBm'], ['_watts', 'W'], ['_volts', 'V'], ['_rpm', 'rpm'],
]);

/** The unit of `path`: `metaUnit` when given (non-empty), else the suffix rule; '' for none. */
export function unitOf(path, metaUnit) {
  if (typeof metaUnit === 'string' && metaUnit !== '') return metaUnit;
  let name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  if (name.endsWith('_total')) name = name.slice(0, -'_total'.length);
  for (const [suffix, unit] of UNIT_RULES) {
    if (name.length > suffix.length && name.endsWith(suffix)) return unit;
  }
  return '';
}

/**
 * The y axes of a panel: its numeric paths' units in order of first appearance, at most
 * `axesMax`. Returns { units, scaleOf: path -> unit, refused: paths whose unit found no axis }.
 */
export function assignAxes(paths, unitFor, axesMax) {
  const units = [];
  const scaleOf = new Map();
  const refused = [];
  for (const p of paths) {
    const u = unitFor(p);
    if (!units.includes(u)) {
      if (units.length >= axesMax) { refused.push(p); continue; }
      units.push(u);
    }
    scaleOf.set(p, u);
  }
  return { units, scaleOf, refused };
}
