/**
 * Compaction of a sealed file: its DELTA blocks re-encoded into blocks of up to
 * STORAGE_LIMITS.compactBlockUpdatesTarget updates (a block is closed once it reaches the
 * target: it holds up to one writer's block more), written as a new file beside it. The
 * first stage of the one-copy layout (docs/prometheus.md, "What 0.5x would take"): the
 * writer's blocks are small so that a commit and a seek stay cheap, and small blocks start
 * every column's prediction afresh (one value in 3.3 has no predecessor at 32 768 updates
 * and 10 000 series); a file nobody writes any more can afford larger ones.
 *
 * What stays the same: every batch (time, paths, values bit for bit, their order), the
 * PATHS and IMAGE frames (copied byte for byte, at the same place between batches: a new
 * block never spans one), the header's archive id, seq and creation time. What changes:
 * DELTA frame boundaries and offsets, and their codec: codec 3 (split, docs/format.md), whose
 * column bodies lie verbatim in the file, each readable alone from its offset (the per-series
 * sidecar can then point at them rather than copy them), so the file's block table and its catalog rows are
 * the new file's (`rows`), and a place (delta block, batch) in the old file is found in the
 * new one through `deltaStarts`.
 *
 * Every block is read through the archive's checked reads (CRC32C, the catalog row), so a
 * damaged file is refused (TPD_CORRUPT_BLOCK), never compacted. The new file is written
 * whole under `outPath`, its commit slot last, and synced; replacing the old file with it
 * (and its catalog rows) is the caller's business. `pace`, when given, is awaited after each
 * old block (a running server's compaction paces itself by it, storage/live-compact.ts).
 */
import { open } from 'node:fs/promises';
import { TapedeckError } from '../protocol/errors.js';
import { valueArray, type Value } from '../protocol/value.js';
import type { Archive } from './archive.js';
import type { BlockRow } from './catalog.js';
import { ByteWriter } from './codec/bytes.js';
import { BLOCK_PAYLOAD_BYTES_MAX, BlockType, encodeSplitFrame } from './codec/frame.js';
import { PAYLOAD_UNDER_A_BIT_UPDATES_MAX } from './codec/payload-head.js';
import { encodeSlot, HEADER_BYTES, SLOT_OFFSETS, SLOT_BYTES, decodeHeader } from './codec/header.js';
import { decodeBatches, encodeBatches } from './codec/payload.js';
import type { BlockTable, FileEntry } from './file-list.js';
import { STORAGE_LIMITS } from './limits.js';

export interface CompactedFile {
  /** Bytes of the new file (all committed). */
  bytes: number;
  /** The new file's blocks, in file order: its block table and catalog rows. */
  rows: BlockRow[];
  /** For each delta block of the old file (by its index among DELTA blocks): the new delta block holding its first batch, and that batch's index there. */
  deltaStarts: Array<{ di: number; k: number }>;
  /** DELTA blocks before and after. */
  deltasBefore: number;
  deltasAfter: number;
}

/** Block size targets (STORAGE_LIMITS' compactBlock* by default; tests take smaller ones). */
export interface CompactTargets {
  updates: number;
  rawBytes: number;
}

/** The batches of the block being built, as the old blocks' decodes gave them. */
class Pending {
  parts: Array<{ ts: Float64Array; counts: Uint32Array; ids: Uint32Array; values: Value[] }> = [];
  batches = 0;
  updates = 0;
  rawBytes = 0;

  add(d: { ts: Float64Array; counts: Uint32Array; ids: Uint32Array; values: Value[] }, rawBytes: number): void {
    this.parts.push(d);
    this.batches += d.ts.length;
    this.updates += d.ids.length;
    this.rawBytes += rawBytes;
  }

  /** The block has reached a target: it is written before the next old block is added. */
  full(target: CompactTargets): boolean {
    return this.updates >= target.updates || this.rawBytes >= target.rawBytes;
  }

  /**
   * Whether the next old block would take the block past what a payload may hold (the
   * format's 2^21 updates, BLOCK_PAYLOAD_BYTES_MAX): a writer's block can hold a batch of up
   * to batchUpdatesMax updates and batchBytesMax bytes, so it is then written alone.
   */
  wouldOverflow(updates: number, rawBytes: number): boolean {
    return this.batches > 0 && (this.updates + updates > PAYLOAD_UNDER_A_BIT_UPDATES_MAX / 2 || this.rawBytes + rawBytes > BLOCK_PAYLOAD_BYTES_MAX / 2);
  }

  /** The block's frame; empties this. */
  take(): { frame: Uint8Array; meta: Omit<BlockRow, 'offset' | 'frameBytes'> } {
    const ts = new Float64Array(this.batches);
    const counts = new Uint32Array(this.batches);
    const ids = new Uint32Array(this.updates);
    // Generic elements: a signalling NaN (Prometheus' stale marker) keeps its bits.
    const values = valueArray(this.updates);
    let b = 0;
    let u = 0;
    for (const p of this.parts) {
      ts.set(p.ts, b);
      counts.set(p.counts, b);
      ids.set(p.ids, u);
      for (let i = 0; i < p.values.length; i++) values[u + i] = p.values[i] as Value;
      b += p.ts.length;
      u += p.ids.length;
    }
    const raw = encodeBatches({ ts, counts, ids, values, batchCount: b, updateCount: u }, new ByteWriter(Math.max(1 << 16, this.rawBytes)));
    const meta = { type: BlockType.DELTA, firstTs: ts[0] as number, lastTs: ts[b - 1] as number, batches: b, updates: u };
    const frame = encodeSplitFrame(meta, raw);
    this.parts = [];
    this.batches = 0;
    this.updates = 0;
    this.rawBytes = 0;
    return { frame, meta };
  }
}

/**
 * Delta blocks a compaction of a file with block table `t` would make, counted from the
 * table by the updates target alone (the rule Pending.full applies; joined blocks never span
 * a PATHS or IMAGE frame): a compacted file gives its own count back.
 */
export function compactedDeltaCount(t: BlockTable, updatesTarget: number): number {
  let blocks = 0;
  let open = 0;
  for (let i = 0; i < t.length; i++) {
    if (t.type(i) !== BlockType.DELTA) {
      open = 0;
      continue;
    }
    if (open === 0) blocks++;
    open += t.updates(i);
    if (open >= updatesTarget) open = 0;
  }
  return blocks;
}

/**
 * Writes the compaction of sealed local file `entry` of `a` to `outPath` (created; an
 * existing file there is replaced). The old file is not touched.
 */
export async function compactSealedFile(a: Archive, entry: FileEntry, outPath: string, targets: Partial<CompactTargets> = {}, pace?: (updates: number) => Promise<void>): Promise<CompactedFile> {
  const target: CompactTargets = { updates: targets.updates ?? STORAGE_LIMITS.compactBlockUpdatesTarget, rawBytes: targets.rawBytes ?? STORAGE_LIMITS.compactBlockRawBytesTarget };
  if (!entry.sealed || entry.location !== 'local') throw new TapedeckError('TPD_BAD_ARGUMENT', `only a sealed local file can be compacted; ${entry.name} is ${entry.sealed ? entry.location : 'not sealed'}`);
  if (entry.damaged) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${entry.name} is damaged: it is not compacted`, { file: entry.name });
  // The header as it was (checked: magic, CRC32C, seq), with one commit (slot A, generation 0) written last.
  const head = await a.readBytes(entry, 0, HEADER_BYTES);
  if (decodeHeader(head).seq !== entry.seq) throw new TapedeckError('TPD_CORRUPT_HEADER', `${entry.name}: its header names another seq`, { file: entry.name });
  head.fill(0, SLOT_OFFSETS[0], SLOT_OFFSETS[1] + SLOT_BYTES);
  const table = a.table(entry);
  const out = await open(outPath, 'w');
  try {
    const rows: BlockRow[] = [];
    const deltaStarts: Array<{ di: number; k: number }> = [];
    const pending = new Pending();
    let offset = HEADER_BYTES;
    let newDeltas = 0;
    const put = async (frame: Uint8Array, meta: Omit<BlockRow, 'offset' | 'frameBytes'>): Promise<void> => {
      await out.write(frame, 0, frame.length, offset);
      rows.push({ ...meta, offset, frameBytes: frame.length });
      offset += frame.length;
    };
    const flush = async (): Promise<void> => {
      if (pending.batches === 0) return;
      const { frame, meta } = pending.take();
      await put(frame, meta);
      newDeltas++;
    };
    for (let i = 0; i < table.length; i++) {
      const row = table.row(i);
      if (row.offset + row.frameBytes > entry.committedBytes) break;
      if (row.type !== BlockType.DELTA) {
        await flush();
        const frame = await a.readBytes(entry, row.offset, row.frameBytes);
        // Checked as every read checks it (CRC32C, its catalog row), then copied as it is.
        a.payloadOf(entry, row, frame);
        await put(frame, row);
        continue;
      }
      const raw = await a.readPayload(entry, row);
      const d = decodeBatches(raw, row.firstTs);
      if (d.ts.length !== row.batches || d.ids.length !== row.updates) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${entry.name} block at ${row.offset}: counts differ from its header`, { file: entry.name, offset: row.offset });
      if (pending.wouldOverflow(d.ids.length, raw.length)) await flush();
      deltaStarts.push({ di: newDeltas, k: pending.batches });
      pending.add(d, raw.length);
      if (pending.full(target)) await flush();
      // A server compacting in the background lets readers and writers run between blocks.
      await pace?.(row.updates);
    }
    await flush();
    await out.write(head, 0, HEADER_BYTES, 0);
    await out.datasync();
    const slot = encodeSlot({ generation: 0, committedBytes: offset });
    await out.write(slot, 0, SLOT_BYTES, SLOT_OFFSETS[0]);
    await out.datasync();
    return { bytes: offset, rows, deltaStarts, deltasBefore: deltaStarts.length, deltasAfter: newDeltas };
  } finally {
    await out.close();
  }
}
