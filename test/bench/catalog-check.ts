/**
 * What checking the catalog at open costs: `node --import tsx test/bench/catalog-check.ts
 * [--files 100] [--blocks 1000] [--paths 100000]`. Builds a catalog of files x blocks
 * block rows and `paths` paths (a 1 TB archive of 1 MiB blocks has about 10^6 block rows),
 * then prints one JSON object: the time of the read-only open check (quick_check, every
 * row's checksum, block tiling) and of the writable one (integrity_check instead), in ms,
 * the best of 3.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Catalog } from '../../storage/catalog.js';
import { BlockType } from '../../storage/codec/frame.js';

const { values: args } = parseArgs({ options: { files: { type: 'string', default: '100' }, blocks: { type: 'string', default: '1000' }, paths: { type: 'string', default: '100000' } } });
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

function best(thorough: boolean): number {
  let min = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const k = new Catalog(file, !thorough);
    const problems = k.audit(thorough);
    k.close();
    if (problems.length > 0) throw new Error(problems.join('; '));
    min = Math.min(min, performance.now() - t0);
  }
  return Math.round(min);
}

const out = { blockRows: FILES * BLOCKS, paths: PATHS, catalogBytes: (await stat(file)).size, readOnlyCheckMs: best(false), writableCheckMs: best(true) };
process.stdout.write(JSON.stringify(out) + '\n');
if (!process.env.KEEP) await rm(dir, { recursive: true, force: true }); else console.log(dir);
