/**
 * Timestamps are integer microseconds since the Unix epoch. Text forms: RFC 3339 with up to
 * microsecond precision, or a bare epoch number whose magnitude tells its unit (seconds
 * below 1e11, milliseconds below 1e14, microseconds above).
 */
import { TapedeckError } from './errors.js';

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

export function formatTs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const micros = String(((us % 1_000_000) + 1_000_000) % 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micros}Z`;
}

/** Latest time accepted: 2^53 µs (year 2255), the largest exact JS integer. */
const TS_MAX_US = Number.MAX_SAFE_INTEGER;

export function parseTs(text: string): number {
  const us = parseTsUnchecked(text);
  if (!Number.isSafeInteger(us) || us < 0 || us > TS_MAX_US) {
    throw new TapedeckError('TPD_BAD_ARGUMENT', `time out of range (1970 to 2255): ${JSON.stringify(text).slice(0, 100)}`);
  }
  return us;
}

function parseTsUnchecked(text: string): number {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    if (n < 1e11) return Math.round(n * 1e6);
    if (n < 1e14) return Math.round(n * 1e3);
    return Math.round(n);
  }
  const m = RFC3339.exec(s);
  if (!m) throw new TapedeckError('TPD_BAD_ARGUMENT', `not an RFC 3339 time or epoch number: ${JSON.stringify(text).slice(0, 100)}`);
  const ms = Date.parse(`${m[1]}T${m[2]}${m[4]?.toUpperCase()}`);
  // Date.parse rolls impossible dates over (02-30 becomes 03-02): refuse those instead.
  const [y, mo, d] = (m[1] as string).split('-').map(Number) as [number, number, number];
  const [hh, mm, ss] = (m[2] as string).split(':').map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (Number.isNaN(ms) || day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || hh > 23 || mm > 59 || ss > 59) {
    throw new TapedeckError('TPD_BAD_ARGUMENT', `invalid date: ${JSON.stringify(text).slice(0, 100)}`);
  }
  const frac = (m[3] ?? '').padEnd(6, '0').slice(0, 6);
  return ms * 1000 + Number(frac);
}
