/**
 * The side-by-side peer harness: Tapedeck, netidx-archive 0.32 (src/main.rs) and MCAP
 * (@mcap/core) write and read the same generated workloads; prints ONE JSON object with the
 * absolute figures of each and Tapedeck's ratios to each peer. See README.md.
 *
 *   npm run bench:peers -- [--workloads fabric,mixed] [--sides tapedeck,netidx,mcap]
 *     [--fabric-hours 3] [--mixed-updates 20000000] [--seeks 200] [--seed 7] [--runs 1]
 *     [--flush-interval-ms 30000] [--dir /tmp/tapedeck-peers] [--keep] [--commit <hash>]
 *
 * Every phase runs in a fresh child process (its peak RSS is its own), one at a time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeWorkloadFile, workloadUpdates, type Workload } from './workload-file.js';
import { fabricWorkload, mixedWorkload, seekInstants } from './workloads.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
// cargo's own variable: a checkout elsewhere (git archive of a commit) can share one build.
const NETIDX_BIN = join(process.env.CARGO_TARGET_DIR ?? join(HERE, 'target'), 'release', 'netidx-peer');
const SIDES = ['tapedeck', 'netidx', 'mcap'] as const;
type Side = (typeof SIDES)[number];
/** A phase's output is one JSON line; anything bigger is a bug. */
const CHILD_OUTPUT_BYTES_MAX = 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'fabric,mixed' },
    sides: { type: 'string', default: SIDES.join(',') },
    'fabric-hours': { type: 'string', default: '3' },
    'mixed-updates': { type: 'string', default: '20000000' },
    seeks: { type: 'string', default: '200' },
    seed: { type: 'string', default: '7' },
    runs: { type: 'string', default: '1' },
    'flush-interval-ms': { type: 'string', default: '30000' },
    dir: { type: 'string', default: join(tmpdir(), 'tapedeck-peers') },
    keep: { type: 'boolean', default: false },
    /** The commit measured, when this tree is an export (git archive) rather than a checkout. */
    commit: { type: 'string' },
  },
});

type Json = Record<string, unknown>;

function run(cmd: string, argv: string[], cwd = ROOT): { ok: true; out: string } | { ok: false; error: string } {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', maxBuffer: CHILD_OUTPUT_BYTES_MAX });
  if (r.status === 0) return { ok: true, out: r.stdout };
  return { ok: false, error: `${cmd} ${argv.join(' ')} exited ${String(r.status ?? r.signal)}: ${(r.stderr || String(r.error ?? '')).trim().slice(-2000)}` };
}

function git(...argv: string[]): string | undefined {
  const r = run('git', argv);
  return r.ok ? r.out.trim() : undefined;
}

/** Builds the netidx side (a no-op once built); on failure the error is the netidx result. */
function buildNetidx(): { ok: true; version: string } | { ok: false; error: string } {
  const r = run('cargo', ['build', '--release', '--quiet'], HERE);
  if (!r.ok) return r;
  const lock = readFileSync(join(HERE, 'Cargo.lock'), 'utf8');
  const version = /name = "netidx-archive"\nversion = "([^"]+)"/.exec(lock)?.[1] ?? 'unknown';
  return { ok: true, version };
}

function phaseArgv(side: Side, phase: 'write' | 'read', files: { workload: string; seeks: string; dir: string }): [string, string[]] {
  const flushMs = args['flush-interval-ms'];
  if (side === 'netidx') {
    const file = join(files.dir, 'archive.netidx');
    if (phase === 'write') {
      mkdirSync(files.dir, { recursive: true });
      return [NETIDX_BIN, ['write', files.workload, file, flushMs]];
    }
    return [NETIDX_BIN, ['read', file, files.seeks]];
  }
  const script = join(HERE, `${side}-side.ts`);
  const common = ['--import', 'tsx', script, '--phase', phase, '--dir', files.dir];
  return [process.execPath, phase === 'write' ? [...common, '--workload', files.workload, '--flush-interval-ms', flushMs] : [...common, '--seeks', files.seeks]];
}

function runSide(side: Side, files: { workload: string; seeks: string; dir: string }): Json {
  const out: Json = {};
  for (const phase of ['write', 'read'] as const) {
    const [cmd, argv] = phaseArgv(side, phase, files);
    const r = run(cmd, argv);
    if (!r.ok) return { ...out, error: r.error };
    out[phase] = JSON.parse(r.out) as Json;
  }
  if (!args.keep) rmSync(files.dir, { recursive: true, force: true });
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/** The figures compared, as paths into a side's { write, read } result. */
const FIGURES: Record<string, string> = {
  writeUpdatesPerSec: 'write.updatesPerSec',
  readUpdatesPerSec: 'read.read.updatesPerSec',
  readFirstPassUpdatesPerSec: 'read.readFirstPass.updatesPerSec',
  writeUpdatesPerCpuSec: 'write.updatesPerCpuSec',
  readUpdatesPerCpuSec: 'read.read.updatesPerCpuSec',
  /** Tapedeck's batch-at-a-time nextRaw pass (its `read` before nextColumns); other sides have none. */
  readRawUpdatesPerCpuSec: 'read.readRaw.updatesPerCpuSec',
  bytesPerUpdate: 'write.bytesPerUpdate',
  openMs: 'read.openMs',
  seekP99Ms: 'read.seekMs.p99',
  seekStateP99Ms: 'read.seekStateFirstBatchMs.p99',
  writePeakRssMB: 'write.rss.peakMB',
  readPeakRssMB: 'read.rss.peakMB',
  openSeekPeakRssMB: 'read.rssAfterOpenSeek.peakMB',
  openSeekAnonRssMB: 'read.rssAfterOpenSeek.anonMB',
};

function at(o: unknown, path: string): number | undefined {
  let v: unknown = o;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Json)[k] : undefined;
  return typeof v === 'number' ? v : undefined;
}

/** Median of each figure over the runs of one side. */
function summarize(runs: Json[]): Json {
  const out: Json = {};
  for (const [name, path] of Object.entries(FIGURES)) {
    const xs = runs.map((r) => at(r, path)).filter((x): x is number => x !== undefined);
    if (xs.length > 0) out[name] = median(xs);
  }
  return out;
}

/**
 * The figures given as ratios. Positioning alone (seekP99Ms) is left out: netidx's is a lookup
 * in an index it built at open, so the ratio says nothing; the state after a seek is compared.
 */
const RATIO_FIGURES = ['writeUpdatesPerSec', 'readUpdatesPerSec', 'writeUpdatesPerCpuSec', 'readUpdatesPerCpuSec', 'bytesPerUpdate', 'openMs', 'seekStateP99Ms', 'writePeakRssMB', 'readPeakRssMB', 'openSeekPeakRssMB'];

/** Tapedeck's figure over the peer's: > 1 means Tapedeck has more (faster, or bigger, or slower for times). */
function ratios(td: Json, peer: Json): Json {
  const out: Json = {};
  for (const k of RATIO_FIGURES) {
    const a = td[k];
    const b = peer[k];
    if (typeof a === 'number' && typeof b === 'number' && b !== 0) out[k] = Number((a / b).toFixed(3));
  }
  return out;
}

/** Every side must have read back what was written: same update count and value sum, same state size. */
function checks(w: Workload, bySide: Partial<Record<Side, Json[]>>): Json {
  const updates = workloadUpdates(w);
  const problems: string[] = [];
  const sums: number[] = [];
  const statePaths = new Set<number | undefined>();
  for (const [side, runs] of Object.entries(bySide)) {
    for (const r of runs) {
      if (r.error) {
        problems.push(`${side} failed`);
        continue;
      }
      const read = at(r, 'read.read.updates');
      if (read !== updates) problems.push(`${side} read ${String(read)} updates of ${updates}`);
      const sum = at(r, 'read.read.valueSum');
      if (sum !== undefined) sums.push(sum);
      statePaths.add(at(r, 'read.statePathsMin'));
    }
  }
  const lo = Math.min(...sums);
  const hi = Math.max(...sums);
  if (!(sums.length > 0 && hi - lo <= 1e-9 * Math.max(Math.abs(hi), 1))) problems.push(`value sums differ: ${lo} .. ${hi}`);
  if (statePaths.size > 1) problems.push(`the earliest seek's state names ${[...statePaths].join(' / ')} paths`);
  return { updatesWritten: updates, statePathsMin: [...statePaths][0] ?? null, problems, ok: problems.length === 0 };
}

function buildWorkload(name: string): Workload {
  if (name === 'fabric') return fabricWorkload(Number(args['fabric-hours']));
  if (name === 'mixed') return mixedWorkload(Number(args['mixed-updates']));
  throw new Error(`unknown workload ${name} (fabric, mixed)`);
}

function main(): void {
  const root = args.dir;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const sides = args.sides.split(',') as Side[];
  for (const s of sides) if (!SIDES.includes(s)) throw new Error(`unknown side ${s} (${SIDES.join(', ')})`);
  const netidx = sides.includes('netidx') ? buildNetidx() : undefined;
  const result: Json = {
    bench: 'peers',
    date: new Date().toISOString(),
    commit: args.commit ?? git('rev-parse', '--short', 'HEAD') ?? 'unknown (not a git checkout: pass --commit)',
    // Tapedeck's side runs the working tree: name what differs from the commit it measured.
    uncommitted: git('status', '--porcelain', '--', 'storage', 'protocol', 'server/sim', 'test/bench', 'test/helpers')?.split('\n').filter((l) => l !== '') ?? 'not a git checkout',
    machine: { cpus: cpus().length, node: process.version, loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))) },
    netidxArchive: netidx ? (netidx.ok ? netidx.version : { buildError: netidx.error }) : 'not run',
    options: { ...args },
    durability: {
      tapedeck: 'storage defaults: images every 64 MiB; commit = fdatasync of the data, then the committed length in a header slot + fdatasync, each 65534 pages or flush interval, and at the end',
      netidx: "the recorder's defaults: images every 64 MiB; flush = msync of the data, then the committed length + msync, each 65534 pages or flush interval, and at the end",
      mcap: 'fdatasync each flush interval and at the end (no commit protocol)',
    },
  };
  const workloads: Json = {};
  for (const name of args.workloads.split(',')) {
    const w = buildWorkload(name);
    const workload = join(root, `${name}.workload`);
    const seeks = join(root, `${name}.seeks`);
    writeWorkloadFile(workload, w);
    writeFileSync(seeks, seekInstants(w, Number(args.seeks), Number(args.seed)).join('\n') + '\n');
    const bySide: Partial<Record<Side, Json[]>> = {};
    for (let run = 0; run < Number(args.runs); run++) {
      for (const side of sides) {
        if (side === 'netidx' && !netidx?.ok) continue;
        (bySide[side] ??= []).push(runSide(side, { workload, seeks, dir: join(root, `${name}-${side}`) }));
      }
    }
    const summary = Object.fromEntries(Object.entries(bySide).map(([s, runs]) => [s, summarize(runs)])) as Partial<Record<Side, Json>>;
    workloads[name] = {
      updates: workloadUpdates(w),
      batches: w.ts.length,
      paths: w.paths.length,
      summary,
      tapedeckOverNetidx: summary.tapedeck && summary.netidx ? ratios(summary.tapedeck, summary.netidx) : null,
      tapedeckOverMcap: summary.tapedeck && summary.mcap ? ratios(summary.tapedeck, summary.mcap) : null,
      checks: checks(w, bySide),
      runs: bySide,
    };
    if (!args.keep) rmSync(workload, { force: true });
  }
  result.workloads = workloads;
  (result.machine as Json).loadavgAtEnd = loadavg().map((x) => Number(x.toFixed(2)));
  if (!args.keep && existsSync(root)) rmSync(root, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main();
