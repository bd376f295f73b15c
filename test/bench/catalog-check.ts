/**
 * What checking the catalog at open costs. Prints one JSON object. Two modes:
 *
 * - `node --import tsx test/bench/catalog-check.ts [--files 100] [--blocks 1000] [--paths 100000]`:
 *   builds a catalog of files x blocks block rows and `paths` paths (a 1 TB archive of 1 MiB
 *   blocks has about 10^6 block rows), then times, best of 3, in ms: the read-only open check
 *   (openAudit: quick_check, the small tables, the newest file's block rows), the writable
 *   one (integrity_check instead), and the full check `tapedeck verify` runs (audit: every
 *   block row's checksum and tiling).
 * - `node --import tsx test/bench/catalog-check.ts --archive DIR [--runs 5] [--writable]`: opens
 *   an existing archive (e.g. the one `npm run bench:storage -- --keep` leaves), each run in a
 *   fresh child process, and reports the open time, RSS after open, and the time and RSS of
 *   loading every local file's block table afterwards (where the other files' block rows are
 *   checked). The OS page cache carries over between runs: the archive is read warm.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Archive } from '../../storage/archive.js';
import { Catalog } from '../../storage/catalog.js';
import { BlockType } from '../../storage/codec/frame.js';

const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '100' },
    blocks: { type: 'string', default: '1000' },
    paths: { type: 'string', default: '100000' },
    archive: { type: 'string' },
    runs: { type: 'string', default: '5' },
    writable: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
});

// ------------------------------------------------------------------ synthetic catalog

async function syntheticCatalog(): Promise<void> {
  const FILES = Number(args.files);
  const BLOCKS = Number(args.blocks);
  const PATHS = Number(args.paths);
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-catalog-'));
  const file = join(dir, 'catalog.sqlite');
  const c = new Catalog(file);
  c.setMeta('archive_id', '0123456789abcdef');
  const paths = Array.from({ length: PATHS }, (_, id) => ({ id, path: `/bench/dev-${id % 100}/metric-${id}`, firstTs: id }));
  let ts = 0;
  for (let seq = 0; seq < FILES; seq++) {
    const blocks = Array.from({ length: BLOCKS }, (_, i) => ({ offset: 96 + i * 65_536, frameBytes: 65_536, type: BlockType.DELTA, firstTs: ++ts, lastTs: ++ts, batches: 100, updates: 10_000 }));
    c.recordFile({ seq, name: `f${seq}`, location: 'local', firstTs: 1, lastTs: ts, indexedBytes: 96 + BLOCKS * 65_536, sealed: true }, blocks, seq === 0 ? paths : []);
  }
  c.close();

  const best = (thorough: boolean, check: (k: Catalog) => string[]): number => {
    let min = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const k = new Catalog(file, !thorough);
      const problems = check(k);
      k.close();
      if (problems.length > 0) throw new Error(problems.join('; '));
      min = Math.min(min, performance.now() - t0);
    }
    return Math.round(min);
  };

  const out = {
    blockRows: FILES * BLOCKS, paths: PATHS, catalogBytes: (await stat(file)).size,
    readOnlyCheckMs: best(false, (k) => k.openAudit(false)), writableCheckMs: best(true, (k) => k.openAudit(true)),
    fullCheckMs: best(false, (k) => k.audit(false)),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  if (!process.env.KEEP) await rm(dir, { recursive: true, force: true }); else console.log(dir);
}

// ------------------------------------------------------------------ existing archive
function rssMB(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

async function child(dir: string, writable: boolean): Promise<void> {
  const t0 = performance.now();
  const a = await Archive.open(dir, { readonly: !writable });
  const openMs = performance.now() - t0;
  const rssAfterOpenMB = rssMB('VmRSS');
  const t1 = performance.now();
  let rows = 0;
  for (const f of a.files) if (f.location === 'local') rows += a.table(f).rows.length;
  const loadAllTablesMs = performance.now() - t1;
  const rssAfterAllTablesMB = rssMB('VmRSS');
  await a.close();
  process.stdout.write(JSON.stringify({ openMs, rssAfterOpenMB, loadAllTablesMs, rows, rssAfterAllTablesMB, files: a.files.length, problems: a.problems.length }));
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return Number((s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0).toFixed(1));
}

async function existingArchive(dir: string): Promise<void> {
  if (args.child) return child(dir, args.writable);
  const runs: Array<Record<string, number>> = [];
  for (let i = 0; i < Number(args.runs); i++) {
    const extra = args.writable ? ['--writable'] : [];
    const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', '--archive', dir, ...extra], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
    runs.push(JSON.parse(r.stdout) as Record<string, number>);
  }
  const col = (k: string) => runs.map((r) => r[k] ?? 0);
  const last = runs.at(-1) ?? {};
  process.stdout.write(`${JSON.stringify({
    archive: dir, writable: args.writable, runs: runs.length, files: last.files, rows: last.rows, problems: last.problems,
    openMs: { p50: pct(col('openMs'), 50), max: pct(col('openMs'), 100) },
    loadAllTablesMs: { p50: pct(col('loadAllTablesMs'), 50), max: pct(col('loadAllTablesMs'), 100) },
    rssAfterOpenMB: pct(col('rssAfterOpenMB'), 50), rssAfterAllTablesMB: pct(col('rssAfterAllTablesMB'), 50),
  })}\n`);
}

if (args.archive !== undefined) await existingArchive(args.archive);
else await syntheticCatalog();
