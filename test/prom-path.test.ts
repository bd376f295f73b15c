import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { escapeSegment, pathToSeries, seriesToPath, unescapeSegment } from '../protocol/prom-path.js';
import { globMatches } from '../protocol/glob.js';
import { isValidPath } from '../protocol/value.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`prom-path property seed ${seed} (FC_SEED=${seed} replays)`);

const text = fc.string({ unit: fc.constantFrom('a', 'b', '_', ':', '/', '=', '%', '*', '?', '[', '{', '}', ']', ' ', '\n', 'é', '"', '\\', '0', '\u0000'), maxLength: 8 });
const labelName = fc.oneof(text.filter((s) => s !== '' && s !== '__name__'), fc.constantFrom('__proto__', 'constructor', 'job', 'instance'));

describe('Prometheus series <-> paths', () => {
  it('maps name and sorted labels to a path, escaping what a path or a glob would misread', () => {
    expect(seriesToPath({ name: 'up', labels: { job: 'node', instance: 'h:9100' } })).toBe('/prom/up/instance=h:9100/job=node');
    expect(seriesToPath({ name: 'x', labels: { a: '', b: 'a/b=c%*' } })).toBe('/prom/x/b=a%2Fb%3Dc%25%2A');
    expect(pathToSeries('/prom/up/instance=h:9100/job=node')).toEqual({ name: 'up', labels: { instance: 'h:9100', job: 'node' } });
  });

  it('refuses paths seriesToPath never writes, so each series has exactly one path', () => {
    for (const p of ['/prom', '/prom/', '/prom/up/job', '/prom/up/=x', '/prom/up/job=', '/prom/up/b=1/a=2', '/prom/up/a=1/a=2', '/prom/up/a=%2', '/prom/up/a=%41', '/prom/up/a=%2f', '/other/up', '/prom/up/__name__=x']) {
      expect(pathToSeries(p), p).toBeUndefined();
    }
    expect(unescapeSegment('a*b')).toBeUndefined();
  });

  it('round-trips every series, and the path is a valid path that globs read literally', () => {
    fc.assert(fc.property(text.filter((s) => s !== ''), fc.dictionary(labelName, text, { maxKeys: 5 }), (name, labels) => {
      const path = seriesToPath({ name, labels });
      const back = pathToSeries(path);
      const kept = Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ''));
      expect(back).toEqual({ name, labels: kept });
      expect(isValidPath(path)).toBe(true);
      // The escaped path contains no glob syntax, so the path itself is a glob matching only itself.
      expect(globMatches(path, path)).toBe(true);
      expect(escapeSegment(name)).not.toMatch(/[*?[\]{}/=]/);
    }), { seed, numRuns: 2000 });
  });
});
