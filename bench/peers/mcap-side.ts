/**
 * MCAP's side of the peer harness (@mcap/core, a peer in the same language). One phase per
 * process, one JSON object on stdout, the same flags as tapedeck-side.ts:
 *
 *   node --import tsx bench/peers/mcap-side.ts --phase write --workload W --dir D --flush-interval-ms 30000
 *   node --import tsx bench/peers/mcap-side.ts --phase read --dir D --seeks S
 *
 * The file is what bench:storage compares with: one channel, one message per batch holding
 * the msgpack map path -> value, LZ4-compressed chunks of 1 MiB, chunk and message indexes.
 * MCAP has no commit protocol: durability here is an fdatasync each flush interval and one at
 * the end (a torn file loses its summary; readers then fall back to a linear scan).
 * MCAP has no images: the state at an instant is read backwards (reverse: true) from it until
 * every path has a value or the file's start is reached.
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { McapIndexedReader, McapWriter, type IReadable } from '@mcap/core';
import { readWorkloadFile, type PoolBatch } from './workload-file.js';
import { flag, readSeeks, rss, spread } from './measure.js';

const CHUNK_BYTES = 1024 * 1024;
const FILE_NAME = 'archive.mcap';
const PATHS_METADATA = 'paths';

async function write(workloadFile: string, dir: string, flushIntervalMs: number): Promise<object> {
  const w = readWorkloadFile(workloadFile);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const fd = openSync(join(dir, FILE_NAME), 'w');
  let position = 0;
  const mcap = new McapWriter({
    writable: {
      position: () => BigInt(position),
      write: async (buf: Uint8Array) => {
        for (let o = 0; o < buf.byteLength; ) o += writeSync(fd, buf, o);
        position += buf.byteLength;
      },
    },
    chunkSize: CHUNK_BYTES,
    compressChunk: (data: Uint8Array) => ({ compression: 'lz4', compressedData: compressFrameSync(Buffer.from(data.buffer, data.byteOffset, data.byteLength)) }),
  });
  const packr = new Packr({ useRecords: false });
  let updates = 0;
  let flushes = 0;
  const t0 = performance.now();
  let lastSyncMs = t0;
  await mcap.start({ profile: '', library: 'tapedeck-peers' });
  const schemaId = await mcap.registerSchema({ name: 'batch', encoding: '', data: new Uint8Array() });
  const channelId = await mcap.registerChannel({ topic: '/batches', schemaId, messageEncoding: 'msgpack', metadata: new Map() });
  await mcap.addMetadata({ name: PATHS_METADATA, metadata: new Map([['count', String(w.paths.length)]]) });
  for (let i = 0; i < w.ts.length; i++) {
    const b = w.pool[i % w.pool.length] as PoolBatch;
    const map: Record<string, number> = {};
    for (let k = 0; k < b.ids.length; k++) map[w.paths[b.ids[k] as number] as string] = b.values[k] as number;
    const t = BigInt(w.ts[i] as number) * 1000n;
    await mcap.addMessage({ channelId, sequence: i, logTime: t, publishTime: t, data: packr.pack(map) });
    updates += b.ids.length;
    if (performance.now() - lastSyncMs >= flushIntervalMs) {
      fdatasyncSync(fd);
      lastSyncMs = performance.now();
      flushes++;
    }
  }
  await mcap.end();
  fdatasyncSync(fd);
  const secs = (performance.now() - t0) / 1000;
  closeSync(fd);
  const bytes = (await stat(join(dir, FILE_NAME))).size;
  return {
    updates,
    batches: w.ts.length,
    secs: Number(secs.toFixed(3)),
    updatesPerSec: Math.round(updates / secs),
    bytes,
    bytesPerUpdate: Number((bytes / updates).toFixed(3)),
    flushes: flushes + 1,
    rss: rss(),
  };
}

function readable(fh: FileHandle, size: number): IReadable {
  return {
    size: async () => BigInt(size),
    read: async (offset: bigint, length: bigint) => {
      const buf = Buffer.allocUnsafe(Number(length));
      let got = 0;
      while (got < buf.byteLength) {
        const { bytesRead } = await fh.read(buf, got, buf.byteLength - got, Number(offset) + got);
        if (bytesRead === 0) throw new Error(`short read at ${Number(offset) + got}`);
        got += bytesRead;
      }
      return buf;
    },
  };
}

const unpackr = new Unpackr({ useRecords: false });
const decode = (data: Uint8Array): Record<string, number> => unpackr.unpack(data) as Record<string, number>;

/** The state at `t` (µs): newest value of each path at or before t, reading backwards. */
async function stateAt(r: McapIndexedReader, t: number, pathCount: number): Promise<Map<string, number>> {
  const state = new Map<string, number>();
  for await (const m of r.readMessages({ endTime: BigInt(t) * 1000n, reverse: true })) {
    for (const [p, v] of Object.entries(decode(m.data))) if (!state.has(p)) state.set(p, v);
    if (state.size >= pathCount) break;
  }
  return state;
}

async function firstAfter(r: McapIndexedReader, t: number): Promise<Record<string, number> | undefined> {
  for await (const m of r.readMessages({ startTime: BigInt(t) * 1000n + 1n })) return decode(m.data);
  return undefined;
}

/** Every message from the beginning, decoded, touching every value. */
async function readAll(r: McapIndexedReader): Promise<object> {
  let updates = 0;
  let batches = 0;
  let sum = 0;
  const t0 = performance.now();
  for await (const m of r.readMessages()) {
    batches++;
    const map = decode(m.data);
    for (const p in map) {
      sum += map[p] as number;
      updates++;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  return { updates, batches, secs: Number(secs.toFixed(3)), updatesPerSec: Math.round(updates / secs), valueSum: sum };
}

/** The writer records how many paths its batches name, so a state read knows when it is complete. */
async function pathCountOf(r: McapIndexedReader): Promise<number> {
  for await (const m of r.readMetadata({ name: PATHS_METADATA })) return Number(m.metadata.get('count'));
  throw new Error(`no ${PATHS_METADATA} metadata record`);
}

async function read(dir: string, seeksFile: string): Promise<object> {
  const seeks = readSeeks(seeksFile);
  const file = join(dir, FILE_NAME);
  const t0 = performance.now();
  const fh = await open(file, 'r');
  const r = await McapIndexedReader.Initialize({
    readable: readable(fh, (await fh.stat()).size),
    decompressHandlers: { lz4: (buf: Uint8Array) => decompressFrameSync(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)) },
  });
  const openMs = performance.now() - t0;
  const pathCount = await pathCountOf(r);
  const seekMs: number[] = [];
  const seekStateMs: number[] = [];
  let statePathsMin = Infinity;
  for (const t of seeks) {
    const s0 = performance.now();
    await firstAfter(r, t);
    const s1 = performance.now();
    const st = await stateAt(r, t, pathCount);
    const s2 = performance.now();
    seekMs.push(s1 - s0);
    seekStateMs.push(s2 - s0);
    statePathsMin = Math.min(statePathsMin, st.size);
  }
  const rssAfterOpenSeek = rss();
  const readFirstPass = await readAll(r);
  const warm = await readAll(r);
  await fh.close();
  return {
    openMs: Number(openMs.toFixed(3)),
    seekMs: spread(seekMs),
    seekStateFirstBatchMs: spread(seekStateMs),
    statePathsMin,
    rssAfterOpenSeek,
    readFirstPass,
    read: warm,
    rss: rss(),
  };
}

const argv = process.argv.slice(2);
const phase = flag(argv, 'phase');
const out = phase === 'write'
  ? await write(flag(argv, 'workload'), flag(argv, 'dir'), Number(flag(argv, 'flush-interval-ms')))
  : await read(flag(argv, 'dir'), flag(argv, 'seeks'));
process.stdout.write(JSON.stringify(out) + '\n');
