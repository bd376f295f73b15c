/**
 * Glob benchmark: `npm run bench:glob [-- --paths 100000 --rounds 11]`. Prints one JSON
 * object: for a plain glob (`/fabric/sw-007/*`) and for hostile 1 KiB globs of several
 * shapes, the time of compileSpec plus one match per path over fabric-like paths, in ns per
 * path (the best of the rounds: the machine's other work only ever adds time), the matches found, and each shape's ratio to the plain
 * glob. Target: worst ≤ 2× plain. (The RegExp this matcher replaced took 58 s on ONE path
 * of 31 segments for a 39-character glob of `/**`.)
 */
import { parseArgs } from 'node:util';
import { compileSpec, parseGlob } from '../../protocol/glob.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';
import { FABRIC_METRICS } from '../../server/sim/fabric.js';

// The `**` shapes stop short of 1 KiB: globSegmentsMax (64) caps them first.
const { values: args } = parseArgs({
  options: { paths: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '11' } },
});
const PATHS = Number(args.paths);
const ROUNDS = Number(args.rounds);

/** The fabric's paths (`/fabric/sw-NNN/metric`) plus per-interface counters one level deeper. */
function fabricPaths(n: number): string[] {
  const out: string[] = [];
  for (let s = 0; out.length < n; s++) {
    const sw = `/fabric/sw-${String(s).padStart(3, '0')}`;
    for (const m of FABRIC_METRICS) out.push(`${sw}/${m}`);
    for (let i = 0; i < 16; i++) out.push(`${sw}/if-${i}/rx_bytes`, `${sw}/if-${i}/tx_bytes`);
  }
  return out.slice(0, n);
}

/** Fills a glob up to globBytesMax with `unit` between `head` and `tail`, within globSegmentsMax. */
function fill(head: string, unit: string, tail: string): string {
  let g = head;
  const segs = (s: string): number => s.split('/').length - 1;
  while ((g + unit + tail).length <= PROTOCOL_LIMITS.globBytesMax && segs(g + unit + tail) <= PROTOCOL_LIMITS.globSegmentsMax) g += unit;
  return g + tail;
}

const SHAPES: Record<string, string> = {
  plain: '/fabric/sw-007/*',
  // Repeated `**` with a tail that matches no path: the shape that stalled the RegExp.
  starsMissingTail: fill('', '/**', '/nope'),
  // `**` between literal segments, tail matching every cpu path: the middle chunks are searched.
  starsLiteralsMatchingTail: fill('', '/**/fabric', `/**/${FABRIC_METRICS[0]}`),
  // Repeated `**` before a tail half the paths have (the collapsed `**` still has to run).
  starsMatchingTail: fill('/fabric', '/**', '/rx_bytes'),
  // `**` between `*` segments: each chunk matches any segment.
  starsWildSegments: fill('', '/**/*', '/**'),
  // One long segment of `*` pieces, on the switch level.
  longWildSegment: `/fabric/${'*-'.repeat(480)}*/**`,
  // A long segment whose pieces all occur (s, w, -, digits) followed by a near-miss tail.
  longWildSegmentNearMiss: `/fabric/${'*s*w*-*0'.repeat(120)}*/rx_bytes`,
  // Long literal segments (1 KiB) after `**`: every comparison is a string compare.
  longLiterals: fill('/**', `/${'x'.repeat(60)}`, '/**'),
};

function nsPerPath(glob: string, paths: readonly string[]): { ns: number; matches: number } {
  const t0 = process.hrtime.bigint();
  const match = compileSpec([glob]);
  let matches = 0;
  for (const p of paths) if (match(p)) matches++;
  return { ns: Number(process.hrtime.bigint() - t0) / paths.length, matches };
}

function best(xs: number[]): number {
  return Math.min(...xs);
}

const paths = fabricPaths(PATHS);
for (const g of Object.values(SHAPES)) parseGlob(g); // every shape is a valid glob
// Warm up every shape first, so the JIT has seen them all before anything is timed.
for (const g of Object.values(SHAPES)) nsPerPath(g, paths);

const results: Record<string, { globBytes: number; segments: number; nsPerPath: number; matches: number; ratioToPlain?: number }> = {};
const rounds: Record<string, number[]> = {};
for (let r = 0; r < ROUNDS; r++) {
  // Interleaved rounds: a slow moment of the machine falls on every shape alike.
  for (const [name, g] of Object.entries(SHAPES)) {
    const { ns, matches } = nsPerPath(g, paths);
    (rounds[name] ??= []).push(ns);
    results[name] = { globBytes: Buffer.byteLength(g), segments: g.split('/').length - 1, nsPerPath: 0, matches };
  }
}
const plain = best(rounds.plain as number[]);
let worst = { name: 'plain', ns: plain };
for (const [name, r] of Object.entries(results)) {
  r.nsPerPath = Number(best(rounds[name] as number[]).toFixed(1));
  if (name !== 'plain') {
    r.ratioToPlain = Number((r.nsPerPath / plain).toFixed(2));
    if (r.nsPerPath > worst.ns) worst = { name, ns: r.nsPerPath };
  }
}
process.stdout.write(JSON.stringify({
  bench: 'glob',
  node: process.version,
  paths: paths.length,
  rounds: ROUNDS,
  shapes: results,
  worst: worst.name,
  worstToPlain: Number((worst.ns / plain).toFixed(2)),
  target: 'worstToPlain <= 2',
}) + '\n');
