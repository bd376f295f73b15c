/** The glob matcher (protocol/glob.ts): semantics against references, hostile globs, validation. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileSpec, globMatches, parseGlob, validateGlobs } from '../protocol/glob.js';
import { isTapedeckError } from '../protocol/errors.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';

/** Segment-wise reference: plain recursion, exponential in the worst case, fine on small inputs. */
function naiveSegment(p: string, s: string): boolean {
  if (p === '') return s === '';
  if (p[0] === '*') return naiveSegment(p.slice(1), s) || (s !== '' && naiveSegment(p, s.slice(1)));
  return s !== '' && p[0] === s[0] && naiveSegment(p.slice(1), s.slice(1));
}
function naive(glob: readonly string[], path: readonly string[]): boolean {
  if (glob.length === 0) return path.length === 0;
  const [g, ...restG] = glob as [string, ...string[]];
  if (g === '**') return naive(restG, path) || (path.length > 0 && naive(glob, path.slice(1)));
  return path.length > 0 && naiveSegment(g, path[0] as string) && naive(restG, path.slice(1));
}
const naiveMatches = (glob: string, path: string): boolean => naive(glob.split('/'), path.split('/'));

/** The RegExp compiler this matcher replaced (today's semantics, kept as a second reference). */
function oldRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '/' && glob.slice(i, i + 3) === '/**' && i + 3 === glob.length) {
      re += '(?:/.*)?';
      i += 2;
    } else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

const SEED = Number(process.env.GLOB_SEED ?? Date.now() % 1_000_000);

/** A valid glob over a small alphabet: segments of a, b, -, with `*` inside and `**` alone. */
const segment = fc.oneof(
  { weight: 1, arbitrary: fc.constant('**') },
  { weight: 4, arbitrary: fc.array(fc.constantFrom('a', 'b', '-', '*'), { maxLength: 4 }).map((cs) => cs.join('').replace(/\*+/g, '*')) },
);
const globArb = fc.array(segment, { minLength: 1, maxLength: 6 }).map((segs) => '/' + segs.join('/'));
const pathArb = fc.array(fc.array(fc.constantFrom('a', 'b', '-'), { maxLength: 4 }).map((cs) => cs.join('')), { minLength: 1, maxLength: 7 })
  .map((segs) => '/' + segs.join('/'));

function badGlob(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isTapedeckError(err, 'TPD_BAD_GLOB')) return err.message;
    throw err;
  }
  throw new Error('expected TPD_BAD_GLOB');
}

describe('glob matcher', () => {
  it(`agrees with a naive recursive matcher and with the RegExp it replaced (seed ${SEED})`, () => {
    console.log(`glob property seed: ${SEED} (GLOB_SEED=${SEED} to replay)`);
    fc.assert(
      fc.property(globArb, fc.array(pathArb, { minLength: 1, maxLength: 8 }), (glob, paths) => {
        const match = compileSpec([glob]);
        const re = oldRegExp(glob);
        for (const p of paths) {
          const want = naiveMatches(glob, p);
          expect(match(p), `${glob} vs ${p}`).toBe(want);
          // One deliberate difference: the RegExp read `/a/**/**` as "/a/ then anything", so
          // it refused `/a`; segment-wise, `**/**` is `**` and `/a/**/**` is `/a/**`.
          if (!/\*\*\/\*\*(\/|$)/.test(glob)) expect(re.test(p), `old RegExp ${glob} vs ${p}`).toBe(want);
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('matches near-misses of generated paths the same way (paths built from the glob)', () => {
    // Random paths rarely match random globs; these are the glob with wildcards filled in,
    // then possibly mutated by one character, so both answers are exercised.
    const filled = globArb.chain((glob) => fc.tuple(
      fc.constant(glob),
      fc.array(fc.constantFrom('', 'a', 'b-', 'ab', 'x/a'), { minLength: 8, maxLength: 8 }),
      fc.nat(40), fc.constantFrom('', 'a', '/', 'b'),
    ));
    fc.assert(
      fc.property(filled, ([glob, fills, cut, extra]) => {
        let k = 0;
        let p = glob.replace(/\*\*|\*/g, () => fills[k++ % fills.length] as string);
        if (cut % 3 === 0) p = p.slice(0, cut % (p.length + 1)) + extra + p.slice(cut % (p.length + 1));
        if (!p.startsWith('/')) p = '/' + p;
        expect(compileSpec([glob])(p), `${glob} vs ${p}`).toBe(naiveMatches(glob, p));
      }),
      { seed: SEED + 1, numRuns: 3000 },
    );
  });

  it('treats **/** as ** (the RegExp required a trailing slash after /a/**/**)', () => {
    expect(globMatches('/a/**/**', '/a')).toBe(true);
    expect(oldRegExp('/a/**/**').test('/a')).toBe(false);
    expect(globMatches('/a/**/**/b', '/a/b')).toBe(true);
  });

  it('keeps the documented cases: trailing /** matches the prefix itself, * stays in its segment', () => {
    const m = (g: string, p: string): boolean => globMatches(g, p);
    expect(m('/fabric/**', '/fabric')).toBe(true);
    expect(m('/fabric/**', '/fabric/sw-007/cpu')).toBe(true);
    expect(m('/fabric/**', '/fabricx')).toBe(false);
    expect(m('/fabric/sw-*/cpu', '/fabric/sw-007/cpu')).toBe(true);
    expect(m('/fabric/sw-*/cpu', '/fabric/sw-0/07/cpu')).toBe(false);
    expect(m('/fabric/*', '/fabric/sw-007/cpu')).toBe(false);
    expect(m('/**/cpu', '/cpu')).toBe(true);
    expect(m('/**/cpu', '/a/b/c/cpu')).toBe(true);
    expect(m('/a/**/b/**/c', '/a/b/c')).toBe(true);
    expect(m('/a/**/b/**/c', '/a/x/c/b/y/c')).toBe(true);
    expect(m('/a/**/b/**/c', '/a/c/b')).toBe(false);
    expect(m('/a.b', '/aXb')).toBe(false); // "." is literal
    expect(m('/a+b(c)', '/a+b(c)')).toBe(true);
    expect(compileSpec(['/x', '/**'])('/anything/at/all')).toBe(true);
    expect(compileSpec([])('/a')).toBe(true);
    expect(compileSpec(['/a/*', '/b'])('/b')).toBe(true);
    expect(compileSpec(['/a/*', '/b'])('/a/b/c')).toBe(false);
  });

  it('answers 1 KiB globs of repeated **, * and near-miss tails at once (the RegExp stalled for seconds)', () => {
    // Before the fix each of these held the event loop for seconds to hours (the RegExp
    // backtracked exponentially); the test would time out. The answers are asserted.
    const stars = '/**'.repeat(63); // with the tail, 64 segments: globSegmentsMax
    const path = '/a'.repeat(60) + '/b';
    const hostile: Array<[string, string, boolean]> = [
      [`${stars}/x`, path, false],
      [`${stars}/b`, path, true],
      [`${'/**/a'.repeat(31)}/x`, path, false],
      [`${'/**/a'.repeat(31)}/b`, path, true],
      [`${'/**/a'.repeat(30)}/**/a/b`, path, true],
      [`${'/**/a'.repeat(30)}/**/a/b`, '/a'.repeat(30) + '/b', false], // 31 a's needed, 30 there
      [`/${'*a'.repeat(500)}*x`, '/' + 'a'.repeat(3000), false],
      [`/${'*a'.repeat(500)}*`, '/' + 'a'.repeat(3000), true],
      [`/${'a*'.repeat(400)}b`, '/' + 'a'.repeat(4000), false],
    ];
    for (const [glob, p, want] of hostile) {
      expect(glob.length).toBeLessThanOrEqual(PROTOCOL_LIMITS.globBytesMax);
      expect(compileSpec([glob])(p), glob.slice(0, 40)).toBe(want);
    }
    // The 39-character glob of the report: the RegExp took 1.2 s on 21 segments, 58 s on 31.
    const report = '/**/**/**/**/**/**/**/**/**/**/**/**/xy';
    expect(report).toHaveLength(39);
    expect(compileSpec([report])('/a'.repeat(30) + '/y')).toBe(false);
    expect(oldRegExp(report).test('/fabric/sw-007/if-12/rx_bytes/total/xy')).toBe(true); // (the non-matching path is not tried: it stalls)
    expect(compileSpec([report])('/fabric/sw-007/if-12/rx_bytes/total/xy')).toBe(true);
  });

  it('refuses malformed globs with TPD_BAD_GLOB naming the glob and why', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['', /is empty/],
      ['[', /does not start with "\/"/],
      ['fabric/*', /does not start with "\/"/],
      ['/fabric/[ab]', /reserved/],
      ['/fabric/sw-00?', /reserved/],
      ['/fabric/{a,b}', /reserved/],
      ['/a**b', /whole segment/],
      ['/a/**b/c', /whole segment/],
      ['/a/***', /whole segment/],
      ['/a\0b', /NUL/],
      ['/' + 'a'.repeat(PROTOCOL_LIMITS.globBytesMax), /globBytesMax/],
      ['/' + 'é'.repeat(600), /globBytesMax/], // 1201 bytes in 601 characters
      ['/a'.repeat(PROTOCOL_LIMITS.globSegmentsMax + 1), /globSegmentsMax/],
      [42, /not a string/],
    ];
    for (const [glob, why] of cases) {
      const msg = badGlob(() => parseGlob(glob));
      expect(msg, String(glob).slice(0, 20)).toMatch(why);
      expect(msg).toContain('glob ');
    }
    expect(badGlob(() => validateGlobs(Array(PROTOCOL_LIMITS.globsPerSpecMax + 1).fill('/a')))).toMatch(/globsPerSpecMax/);
    expect(badGlob(() => validateGlobs('/a'))).toMatch(/list/);
    expect(badGlob(() => compileSpec(['/ok', '[']))).toMatch(/"\["/);
    // A megabyte of glob is refused without walking it all.
    expect(badGlob(() => parseGlob('/' + 'a'.repeat(1 << 20)))).toMatch(/globBytesMax/);
    // At the limits exactly, accepted.
    expect(() => parseGlob('/' + 'a'.repeat(PROTOCOL_LIMITS.globBytesMax - 1))).not.toThrow();
    expect(() => parseGlob('/a'.repeat(PROTOCOL_LIMITS.globSegmentsMax))).not.toThrow();
  });
});
