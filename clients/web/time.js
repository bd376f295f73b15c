// Times on the wire are integer microseconds since the epoch; the page shows them in UTC.

/** "2026-11-23 14:02:00.123 UTC" from epoch µs; "—" for null. */
export function formatUs(us) {
  if (us === null || us === undefined || !Number.isFinite(us)) return '—';
  return new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/**
 * Epoch µs as RFC 3339 with six fraction digits ("1970-01-01T00:00:00.000002Z"): how the
 * page sends a time. A JSON number is read by its magnitude (docs/time.md: seconds below
 * 1e11, milliseconds below 1e14), so µs before 1973-03-03 sent as a number land elsewhere.
 */
export function rfc3339Us(us) {
  const ms = Math.floor(us / 1000);
  return new Date(ms).toISOString().replace('Z', `${String(us - ms * 1000).padStart(3, '0')}Z`);
}

/** "14:02:00.123" from epoch µs (the table's "changed" column, chart tooltips). */
export function formatClock(us) {
  if (us === null || us === undefined || !Number.isFinite(us)) return '';
  return new Date(Math.floor(us / 1000)).toISOString().slice(11, 23);
}

/** A short human duration: "45 s", "12 min", "3.5 h", "2.1 d". */
export function formatSpan(us) {
  const s = us / 1e6;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export const MINUTE_US = 60e6;
export const HOUR_US = 3600e6;
