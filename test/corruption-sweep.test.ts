/**
 * Corruption sweep: damages every region of a small archive (rotated files and `current`,
 * each header field, both commit slots, the frames of PATHS, IMAGE and DELTA blocks, the
 * catalog's pages), one damage per copy, at seeded random offsets, and requires:
 * verify detects every damage (the only exception: catalog bytes whose change leaves every
 * row as it was, e.g. free space in a page, which no one reads); no command crashes (read-
 * only and writable opens, inspect, export: a TapedeckError is an answer, anything else a
 * crash); every batch served equals the original one with its timestamp, or is absent.
 *
 * SWEEP_SEED=<n> replays a run; the seed is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { BlockType } from '../storage/codec/frame.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { scanBlocks } from '../storage/segment-file.js';
import { run } from '../clients/cli/main.js';
import { isTapedeckError } from '../protocol/errors.js';
import { rng, randomBatches } from './helpers/workload.js';
import { plain } from './helpers/replay.js';
import { tapedeckCli, xorByte, zeroBytes } from './helpers/damage.js';
import type { Batch } from '../protocol/value.js';

const SEED = Number(process.env.SWEEP_SEED ?? 4004);
const OPTIONS = { imageFrequencyBytes: 3000, flushIntervalMs: 0, rotateSizeBytes: 9000 };
/** Blocks of each type damaged per file, and damages per region: keeps the sweep near 30 s. */
const BLOCKS_PER_TYPE = 2;
const DAMAGES_PER_REGION = 2;
const CATALOG_PAGE_BYTES = 4096;

interface Region {
  file: string;
  name: string;
  from: number;
  to: number;
}

interface Damage extends Region {
  offset: number;
  kind: 'xor' | 'zero';
  mask: number;
  length: number;
}

let base: string;
let work: string;
let batches: Batch[];
const byTs = new Map<number, string>();
let exportLines: Set<string>;
let catalogDump: string;

/** Stable text of a value (bigint and bytes included) for comparisons. */
function text(v: unknown): string {
  return JSON.stringify(plain(v), (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));
}

/** Runs a CLI command in this process; stdout and stderr are kept, not printed. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += String(c)), true)) as typeof process.stderr.write;
  try {
    return { code: await run(args), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** Every row of every catalog table, as text; undefined when SQLite cannot read them. */
function dumpCatalog(file: string): string | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const tables = ['meta', 'files', 'blocks', 'paths', 'puts'];
    return JSON.stringify(tables.map((t) => db!.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).raw().all()));
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

/** Reads every batch it can; a TapedeckError ends the read (the rest is absent), anything else fails the test. */
async function servedBatches(a: Archive, where: string): Promise<Batch[]> {
  const out: Batch[] = [];
  const c = a.cursor();
  try {
    for (let b = await c.next(); b; b = await c.next()) out.push(b);
  } catch (err) {
    if (!isTapedeckError(err)) throw new Error(`${where}: crash while reading: ${String(err)}`, { cause: err });
  }
  return out;
}

function expectIdenticalOrAbsent(served: readonly Batch[], where: string): void {
  let last = -Infinity;
  for (const b of served) {
    expect(b.ts, `${where}: batches out of order`).toBeGreaterThan(last);
    last = b.ts;
    expect(text(b.updates), `${where}: batch at ${b.ts} altered`).toBe(byTs.get(b.ts));
  }
}

/** Exit 0, or 1 with a `tapedeck: CODE: message` line (reindex: a count of problems); never a crash. */
function expectAnswer(r: { code: number; stdout: string; stderr: string }, where: string): void {
  expect([0, 1], `${where}: exit ${r.code}: ${r.stderr}`).toContain(r.code);
  if (r.code === 1) expect(r.stderr + r.stdout, where).toMatch(/^tapedeck: TPD_[A-Z_]+: |\d+ problem\(s\), run tapedeck verify/m);
  expect(r.stderr, where).not.toMatch(/TPD_INTERNAL|\n\s+at /);
}

/** Regions of the base archive: header fields and slots of each file, frames of sampled blocks, catalog pages. */
async function regions(r: () => number): Promise<Region[]> {
  const out: Region[] = [];
  const names = (await readdir(base)).filter((n) => n === 'current' || /^\d{4}-/.test(n)).sort();
  for (const file of names) {
    const fields: Array<[string, number, number]> = [
      ['magic', 0, 8], ['version', 8, 10], ['flags and header length', 10, 16], ['archive id, seq, created', 16, 40],
      ['header CRC', 40, 44], ['reserved', 44, 48], ['slot A', 48, 72], ['slot B', 72, 96],
    ];
    for (const [name, from, to] of fields) out.push({ file, name: `header ${name}`, from, to });
    const fh = await open(join(base, file), 'r');
    try {
      const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
      for (const type of [BlockType.PATHS, BlockType.IMAGE, BlockType.DELTA]) {
        const kind = type === BlockType.PATHS ? 'path-dictionary' : type === BlockType.IMAGE ? 'image' : 'delta';
        const mine = blocks.filter((b) => b.type === type);
        for (let i = 0; i < BLOCKS_PER_TYPE && mine.length > 0; i++) {
          const b = mine.splice(Math.floor(r() * mine.length), 1)[0]!;
          out.push({ file, name: `${kind} block frame header`, from: b.offset, to: b.offset + 40 });
          out.push({ file, name: `${kind} block CRC`, from: b.offset + 40, to: b.offset + 44 });
          out.push({ file, name: `${kind} block reserved`, from: b.offset + 44, to: b.offset + 48 });
          out.push({ file, name: `${kind} block payload`, from: b.offset + 48, to: b.offset + b.frameBytes });
        }
      }
    } finally {
      await fh.close();
    }
  }
  const size = (await stat(join(base, 'catalog.sqlite'))).size;
  out.push({ file: 'catalog.sqlite', name: 'catalog file header', from: 0, to: 100 });
  for (let p = 0; p * CATALOG_PAGE_BYTES < size; p++) {
    out.push({ file: 'catalog.sqlite', name: `catalog page ${p + 1}`, from: Math.max(p * CATALOG_PAGE_BYTES, p === 0 ? 100 : 0), to: Math.min(size, (p + 1) * CATALOG_PAGE_BYTES) });
  }
  return out;
}

function damages(rs: readonly Region[], r: () => number): Damage[] {
  const out: Damage[] = [];
  for (const reg of rs) {
    for (let i = 0; i < DAMAGES_PER_REGION; i++) {
      const offset = reg.from + Math.floor(r() * (reg.to - reg.from));
      out.push({ ...reg, offset, kind: i % 2 === 0 ? 'xor' : 'zero', mask: 1 + Math.floor(r() * 255), length: 1 + Math.floor(r() * Math.min(4, reg.to - offset)) });
    }
  }
  // A whole zeroed catalog page, the damage seen in the field.
  for (const reg of rs.filter((x) => /^catalog page/.test(x.name))) out.push({ ...reg, offset: reg.from, kind: 'zero', mask: 0xff, length: reg.to - reg.from });
  return out;
}

/** Applies the damage to a copy. Zeroes over zeroes change nothing: those bytes are flipped instead. */
async function apply(d: Damage, dir: string): Promise<void> {
  const file = join(dir, d.file);
  if (d.kind === 'zero' && (await zeroBytes(file, d.offset, d.length))) return;
  await xorByte(file, d.offset, d.mask);
}

beforeAll(async () => {
  console.log(`corruption sweep seed ${SEED} (replay with SWEEP_SEED=${SEED})`);
  base = await mkdtemp(join(tmpdir(), 'tapedeck-sweep-base-'));
  work = await mkdtemp(join(tmpdir(), 'tapedeck-sweep-'));
  batches = randomBatches(SEED, 500, { paths: 30, maxUpdates: 6 });
  const a = await Archive.open(base, OPTIONS);
  let i = 0;
  for (const b of batches) {
    a.writer!.append(b.updates, b.ts);
    if (++i % 40 === 0) await a.writer!.flush();
  }
  await a.close();
  for (const b of batches) byTs.set(b.ts, text(b.updates));
  const out = join(work, 'base.ndjson');
  expect((await cli('export', '--archive', base, '--out', out)).code).toBe(0);
  exportLines = new Set((await readFile(out, 'utf8')).split('\n').filter((l) => l !== ''));
  expect(exportLines.size).toBe(batches.length);
  catalogDump = dumpCatalog(join(base, 'catalog.sqlite'))!;
  expect((await verifyArchive(base)).ok).toBe(true);
});

afterAll(async () => {
  for (const d of [base, work]) if (d) await rm(d, { recursive: true, force: true });
});

describe('corruption sweep', () => {
  it('verify detects every damage, no command crashes, and every batch served is the original or absent', async () => {
    const r = rng(SEED);
    const rs = await regions(r);
    expect(rs.filter((x) => x.file !== 'catalog.sqlite').map((x) => x.file)).toEqual(expect.arrayContaining(['current']));
    expect(new Set(rs.map((x) => x.file)).size).toBeGreaterThanOrEqual(4); // rotated files, current, catalog
    const summary = { seed: SEED, damages: 0, detected: 0, catalogUnused: 0, partialReads: 0, regions: rs.length };
    let n = 0;
    for (const d of damages(rs, r)) {
      const where = `${d.file} ${d.name} @${d.offset} ${d.kind}${d.kind === 'xor' ? ` 0x${d.mask.toString(16)}` : ` ${d.length}`} (seed ${SEED})`;
      const dir = join(work, `t${n++}`);
      await cp(base, dir, { recursive: true });
      await apply(d, dir);
      summary.damages++;
      const report = await verifyArchive(dir);
      if (!report.ok) summary.detected++;
      else {
        // Only catalog bytes that no row depends on may change unseen.
        expect(d.file, `${where}: verify called the damaged archive clean`).toBe('catalog.sqlite');
        expect(dumpCatalog(join(dir, 'catalog.sqlite')), `${where}: verify missed a change to the catalog's rows`).toBe(catalogDump);
        summary.catalogUnused++;
      }

      const ro = await Archive.open(dir, { readonly: true });
      const served = await servedBatches(ro, `${where} read-only`);
      await ro.close();
      expectIdenticalOrAbsent(served, `${where} read-only`);
      if (served.length < batches.length) summary.partialReads++;

      const inspect = await cli('inspect', dir, '--json');
      expectAnswer(inspect, `${where} inspect`);
      const out = join(work, `t${n}.ndjson`);
      const exp = await cli('export', '--archive', dir, '--out', out);
      expectAnswer(exp, `${where} export`);
      const lines = (await readFile(out, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
      for (const l of lines) expect(exportLines.has(l), `${where} export: line altered: ${l.slice(0, 100)}`).toBe(true);

      const w = await Archive.open(dir, OPTIONS);
      expectIdenticalOrAbsent(await servedBatches(w, `${where} writable`), `${where} writable`);
      w.writer!.append([['/after/damage', 1]]);
      await w.writer!.flush();
      await w.close();
      await rm(dir, { recursive: true });
      await rm(out, { force: true });
    }
    console.log(JSON.stringify(summary));
    expect(summary.detected + summary.catalogUnused).toBe(summary.damages);
    expect(summary.damages).toBeGreaterThanOrEqual(180);
  });

  it('the CLI run as a process answers a badly damaged archive with code lines and exit codes, no stack trace', async () => {
    const dir = join(work, 'cli');
    await cp(base, dir, { recursive: true });
    // A damaged slot in current, a bad delta payload in a rotated file, a zeroed catalog page.
    const rotated = (await readdir(dir)).filter((x) => /^\d{4}-/.test(x)).sort()[0]!;
    await xorByte(join(dir, 'current'), 50, 0x40);
    const fh = await open(join(dir, rotated), 'r');
    const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
    await fh.close();
    const delta = blocks.find((b) => b.type === BlockType.DELTA)!;
    await xorByte(join(dir, rotated), delta.offset + 60, 0x08);
    await zeroBytes(join(dir, 'catalog.sqlite'), CATALOG_PAGE_BYTES, CATALOG_PAGE_BYTES);

    const verify = await tapedeckCli('verify', dir);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/BAD current at offset 0: TPD_CORRUPT_HEADER: commit slot A/);
    expect(verify.stdout).toMatch(/BAD catalog\.sqlite: TPD_CORRUPT_CATALOG: /);
    expect(verify.stdout).toMatch(new RegExp(`BAD ${rotated} at offset ${delta.offset}: TPD_CORRUPT_BLOCK`));
    for (const args of [['inspect', dir], ['export', '--archive', dir, '--out', join(work, 'cli.ndjson')], ['reindex', dir]]) {
      const res = await tapedeckCli(...args);
      expectAnswer(res, args[0]!);
    }
    const after = await tapedeckCli('verify', dir, '--json');
    expect(after.code).toBe(1); // the bad block stays bad; slot and catalog are repaired
    const problems = (JSON.parse(after.stdout) as { problems: Array<{ file: string }> }).problems;
    expect(problems.map((p) => p.file)).toEqual([rotated]);
  });
});
