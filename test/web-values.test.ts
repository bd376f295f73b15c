/** The web player's pure helpers (clients/web/values.js, time.js), run in Node. */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { formatClock, formatUs } from '../clients/web/time.js';
import { encodeJsonFrame } from '../protocol/frames.js';
import { compileSpec } from '../protocol/glob.js';
import { buildWebProtocol, WEB_PROTOCOL_OUT } from '../scripts/build-web.mjs';

// values.js imports the bundle of protocol/glob.ts that `npm run build` makes: build it
// first (as server/routes/web.ts does from the sources), then load the page's module.
await buildWebProtocol();
const { chartNumber, filterProblem, formatValue, isNumeric, pathFilter, reviveValue } = await import('../clients/web/values.js');

describe('web player values', () => {
  it('revives the JSON escapes the server writes (bytes, bigints, non-finite numbers, -0)', () => {
    const values = { b: new Uint8Array([1, 2, 255]), big: 2n ** 70n, nan: NaN, inf: -Infinity, nz: -0, nested: { x: [1, 'a', null] } };
    const wire = (JSON.parse(encodeJsonFrame({ type: 'state', ts: 1, values })) as { values: Record<string, unknown> }).values;
    expect(reviveValue(wire.b)).toEqual(new Uint8Array([1, 2, 255]));
    expect(reviveValue(wire.big)).toBe(2n ** 70n);
    expect(reviveValue(wire.nan)).toBeNaN();
    expect(reviveValue(wire.inf)).toBe(-Infinity);
    expect(Object.is(reviveValue(wire.nz), -0)).toBe(true);
    expect(reviveValue(wire.nested)).toEqual({ x: [1, 'a', null] });
    expect(formatValue(wire.b)).toBe('<3 bytes>');
    expect(formatValue(wire.big)).toBe(String(2n ** 70n));
    expect(formatValue(wire.nan)).toBe('NaN');
    expect(formatValue(wire.nz)).toBe('-0');
    expect(formatValue(37.4)).toBe('37.4');
    expect(formatValue(null)).toBe('—');
    expect(formatValue('x'.repeat(500))).toHaveLength(161);
    expect(isNumeric(wire.nan)).toBe(true);
    expect(isNumeric('3')).toBe(false);
    expect(chartNumber(wire.inf)).toBeNull();
    expect(chartNumber(12.5)).toBe(12.5);
  });

  it('filters paths by glob, by prefix, or by substring', () => {
    const paths = ['/fabric/sw-001/cpu_util_pct', '/fabric/sw-001/temperature_c', '/fabric/sw-010/cpu_util_pct', '/twin/flows'];
    const keep = (text: string): string[] => paths.filter(pathFilter(text));
    expect(keep('')).toEqual(paths);
    expect(keep('/fabric/*/cpu_util_pct')).toEqual(['/fabric/sw-001/cpu_util_pct', '/fabric/sw-010/cpu_util_pct']);
    expect(keep('/fabric/**')).toHaveLength(3);
    expect(keep('/fabric/sw-00*/*')).toEqual(['/fabric/sw-001/cpu_util_pct', '/fabric/sw-001/temperature_c']);
    expect(keep('/fabric/sw-001')).toEqual(['/fabric/sw-001/cpu_util_pct', '/fabric/sw-001/temperature_c']);
    expect(keep('/twin/flows')).toEqual(['/twin/flows']);
    expect(keep('TEMP')).toEqual(['/fabric/sw-001/temperature_c']);
    expect(keep('/fabric/sw-001.')).toEqual([]); // "." is literal
    expect(keep('/')).toEqual(paths);
    // The server's rules, from the server's code: `?` is reserved, `**` a whole segment.
    expect(keep('/fabric/sw-00?/*')).toEqual([]);
    expect(filterProblem('/fabric/sw-00?/*')).toMatch(/reserved/);
    expect(filterProblem('/fabric/a**')).toMatch(/whole segment/);
    expect(filterProblem('/fabric/**')).toBeNull();
    expect(filterProblem('temp')).toBeNull();
    // A hostile glob is answered at once (the page's RegExp copy backtracked like the server's).
    const deep = '/a'.repeat(40) + '/b';
    expect(pathFilter('/**'.repeat(60) + '/x')(deep)).toBe(false);
    expect(pathFilter('/**'.repeat(60) + '/b')(deep)).toBe(true);
  });

  it('filters with the bundle of the server\'s matcher, not a copy', async () => {
    const bundle = await readFile(WEB_PROTOCOL_OUT, 'utf8');
    expect(bundle).toContain('Built from protocol/glob.ts');
    const paths = ['/a', '/a/b', '/ab', '/a/b/c', '/x/a/b'];
    for (const g of ['/a/**', '/**/b', '/a*', '/*/b/**', '/**/a/**/c']) {
      expect(paths.filter(pathFilter(g)), g).toEqual(paths.filter(compileSpec([g])));
    }
  });

  it('shows times in UTC with milliseconds', () => {
    const us = Date.UTC(2026, 10, 23, 14, 2, 0, 123) * 1000 + 456;
    expect(formatUs(us)).toBe('2026-11-23 14:02:00.123 UTC');
    expect(formatClock(us)).toBe('14:02:00.123');
    expect(formatUs(null)).toBe('—');
  });
});
