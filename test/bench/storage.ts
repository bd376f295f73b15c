/**
 * Storage benchmark: `npm run bench:storage [-- --gb 1 --fabric-hours 6 --keep]`.
 * Prints one JSON object:
 *  - ingest: updates/s and archive MB/s through ArchiveWriter.append for batches of
 *    1, 10, 100, 1000 float updates at the default flush policy (final flush included);
 *  - fabric: bytes per update on the fabric workload (64 switches x 8 metrics, one batch
 *    per simulated second), against NDJSON+gzip per file (seed 000's storage) and
 *    @mcap/core with LZ4 chunks;
 *  - big: open time and seek latency p50/p99 on an archive of at least --gb GB, measured in
 *    a fresh child process, with its peak RSS, next to the same child on a small archive.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { createWriteStream, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { parseArgs } from 'node:util';
import { Packr } from 'msgpackr';
import { compressFrameSync } from 'lz4-napi';
import { McapWriter } from '@mcap/core';
import { Archive } from '../../storage/archive.js';
import { fabricBatches } from '../../server/sim/fabric.js';
import type { Batch, Update } from '../../protocol/value.js';
import { rng } from '../helpers/workload.js';

const { values: args } = parseArgs({
  options: {
    gb: { type: 'string', default: '1' },
    'fabric-hours': { type: 'string', default: '6' },
    'ingest-updates': { type: 'string', default: '4000000' },
    dir: { type: 'string', default: join(tmpdir(), 'tapedeck-bench') },
    keep: { type: 'boolean', default: false },
    phase: { type: 'string' },
    archive: { type: 'string' },
  },
});

import { MB, buildBig, dirBytes, floatPool } from './archives.js';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number).toFixed(3));
}

// ------------------------------------------------------------------ ingest

async function ingest(dir: string, size: number, totalUpdates: number, decimal: boolean): Promise<object> {
  await rm(dir, { recursive: true, force: true });
  const pool = floatPool(size, decimal);
  const a = await Archive.open(dir, {});
  const w = a.writer!;
  const batches = Math.ceil(totalUpdates / size);
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    w.append(pool[b % pool.length] as Update[]);
    if (w.needsDrain) await w.drain();
  }
  await w.flush();
  const secs = (performance.now() - t0) / 1000;
  await a.close();
  const bytes = await dirBytes(dir);
  await rm(dir, { recursive: true, force: true });
  return {
    batchSize: size,
    values: decimal ? 'decimal (2 places)' : 'arbitrary float64',
    updates: batches * size,
    updatesPerSec: Math.round((batches * size) / secs),
    archiveMBPerSec: Number((bytes / MB / secs).toFixed(1)),
    bytesPerUpdate: Number((bytes / (batches * size)).toFixed(3)),
  };
}

// ------------------------------------------------------------------ fabric and baselines

async function fabric(dir: string, hours: number): Promise<object> {
  const seconds = Math.round(hours * 3600);
  const base = 1_763_000_000_000_000;
  let updates = 0;
  // Tapedeck
  await rm(dir, { recursive: true, force: true });
  const a = await Archive.open(dir, {});
  let t0 = performance.now();
  for (const b of fabricBatches(1, 64, seconds, base)) {
    a.writer!.append(b.updates, b.ts);
    updates += b.updates.length;
  }
  await a.close();
  const tapedeckSecs = (performance.now() - t0) / 1000;
  const tapedeckBytes = await dirBytes(dir);
  await rm(dir, { recursive: true, force: true });

  // (a) NDJSON, gzip-compressed per file, as seed 000 stores its data (one file per hour).
  await mkdir(dir, { recursive: true });
  t0 = performance.now();
  let gzBytes = 0;
  const perFile = 3600;
  let gz: ReturnType<typeof createGzip> | undefined;
  let out: ReturnType<typeof createWriteStream> | undefined;
  let i = 0;
  const closeFile = async (): Promise<void> => {
    if (!gz || !out) return;
    const done = new Promise<void>((resolve) => out!.on('close', () => resolve()));
    gz.end();
    await done;
  };
  for (const b of fabricBatches(1, 64, seconds, base)) {
    if (i % perFile === 0) {
      await closeFile();
      out = createWriteStream(join(dir, `part-${i / perFile}.ndjson.gz`));
      gz = createGzip();
      gz.pipe(out);
    }
    const line = JSON.stringify({ ts: b.ts, updates: Object.fromEntries(b.updates) }) + '\n';
    if (!gz!.write(line)) await new Promise<void>((resolve) => gz!.once('drain', () => resolve()));
    i++;
  }
  await closeFile();
  const ndjsonSecs = (performance.now() - t0) / 1000;
  for (const f of await readdir(dir)) gzBytes += (await stat(join(dir, f))).size;
  await rm(dir, { recursive: true, force: true });

  // (b) MCAP with LZ4 chunks: one channel, one msgpack message per batch.
  const packr = new Packr({ useRecords: false });
  let mcapBytes = 0;
  const sink = {
    position: () => BigInt(mcapBytes),
    write: async (buf: Uint8Array) => {
      mcapBytes += buf.byteLength;
    },
  };
  t0 = performance.now();
  const mcap = new McapWriter({
    writable: sink,
    chunkSize: 1024 * 1024,
    compressChunk: (data: Uint8Array) => ({ compression: 'lz4', compressedData: compressFrameSync(Buffer.from(data)) }),
  });
  await mcap.start({ profile: '', library: 'tapedeck-bench' });
  const schemaId = await mcap.registerSchema({ name: 'batch', encoding: '', data: new Uint8Array() });
  const channelId = await mcap.registerChannel({ topic: '/fabric', schemaId, messageEncoding: 'msgpack', metadata: new Map() });
  let seq = 0;
  for (const b of fabricBatches(1, 64, seconds, base)) {
    const t = BigInt(b.ts) * 1000n;
    await mcap.addMessage({ channelId, sequence: seq++, logTime: t, publishTime: t, data: packr.pack(Object.fromEntries(b.updates)) });
  }
  await mcap.end();
  const mcapSecs = (performance.now() - t0) / 1000;

  const tpu = tapedeckBytes / updates;
  return {
    workload: `64 switches x 8 metrics, ${seconds} batches (one per simulated second)`,
    updates,
    tapedeck: { bytes: tapedeckBytes, bytesPerUpdate: Number(tpu.toFixed(3)), updatesPerSec: Math.round(updates / tapedeckSecs) },
    ndjsonGzip: { bytes: gzBytes, bytesPerUpdate: Number((gzBytes / updates).toFixed(3)), updatesPerSec: Math.round(updates / ndjsonSecs) },
    mcapLz4: { bytes: mcapBytes, bytesPerUpdate: Number((mcapBytes / updates).toFixed(3)), updatesPerSec: Math.round(updates / mcapSecs) },
    sizeRatioVsNdjsonGzip: Number((tapedeckBytes / gzBytes).toFixed(3)),
    sizeRatioVsMcapLz4: Number((tapedeckBytes / mcapBytes).toFixed(3)),
  };
}

// ------------------------------------------------------------------ big archive

/** Child phase: open the archive, then random seeks, each followed by the full state. */
async function seekPhase(dir: string): Promise<void> {
  const t0 = performance.now();
  const a = await Archive.open(dir, { readonly: true });
  const openMs = performance.now() - t0;
  const first = a.files.find((f) => f.firstTs !== null)!.firstTs!;
  const last = a.lastTs;
  const r = rng(7);
  const seekMs: number[] = [];
  const seekStateMs: number[] = [];
  let paths = 0;
  for (let i = 0; i < 200; i++) {
    const t = Math.floor(first + r() * (last - first));
    const c = a.cursor();
    const s0 = performance.now();
    await c.seek({ ts: t });
    const s1 = performance.now();
    const st = await c.stateById();
    await c.next();
    const s2 = performance.now();
    seekMs.push(s1 - s0);
    seekStateMs.push(s2 - s0);
    paths = st.size;
  }
  await a.close();
  const t1 = performance.now();
  const w = await Archive.open(dir, {});
  const openWritableMs = performance.now() - t1;
  await w.close();
  const out = {
    archiveBytes: await dirBytes(dir),
    files: a.files.length,
    openReadonlyMs: Number(openMs.toFixed(1)),
    openWritableMs: Number(openWritableMs.toFixed(1)),
    seekMs: { p50: pct(seekMs, 50), p99: pct(seekMs, 99), max: pct(seekMs, 100) },
    seekStateFirstBatchMs: { p50: pct(seekStateMs, 50), p99: pct(seekStateMs, 99), max: pct(seekStateMs, 100) },
    pathsInState: paths,
    // VmHWM, not getrusage: Linux carries ru_maxrss across exec from the parent.
    peakRssMB: Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024),
  };
  process.stdout.write(JSON.stringify(out));
}

function runSeekChild(dir: string): object {
  const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--phase', 'seek', '--archive', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`seek phase failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as object;
}

async function main(): Promise<void> {
  if (args.phase === 'seek') return seekPhase(args.archive as string);
  const root = args.dir;
  await mkdir(root, { recursive: true });
  const ingestUpdates = Number(args['ingest-updates']);
  const result: Record<string, unknown> = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version } };
  const ing = [];
  for (const size of [1, 10, 100, 1000]) ing.push(await ingest(join(root, 'ingest'), size, size === 1 ? ingestUpdates / 4 : ingestUpdates, true));
  ing.push(await ingest(join(root, 'ingest'), 100, ingestUpdates, false));
  result.ingest = ing;
  result.fabric = await fabric(join(root, 'fabric'), Number(args['fabric-hours']));
  const bigDir = join(root, 'big');
  const built = await buildBig(bigDir, Number(args.gb));
  const smallDir = join(root, 'small');
  await rm(smallDir, { recursive: true, force: true });
  {
    const pool = floatPool(100, false);
    const a = await Archive.open(smallDir, {});
    let ts = 1_763_000_000_000_000;
    for (let b = 0; b < 20_000; b++) a.writer!.append(pool[b % pool.length] as Update[], (ts += 1000));
    await a.close();
  }
  result.big = {
    build: { updates: built.updates, bytes: built.bytes, updatesPerSec: built.secs > 0 ? Math.round(built.updates / built.secs) : 'reused' },
    ...runSeekChild(bigDir),
    sameOnSmallArchive: runSeekChild(smallDir),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (!args.keep) await rm(root, { recursive: true, force: true });
}

await main();

export type { Batch };
