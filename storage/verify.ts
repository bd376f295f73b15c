/**
 * Full check of an archive's files: every header, every committed block's framing, CRC32C,
 * decompression and decoding, timestamp order within and across files. Reads everything,
 * one block at a time. Used by `tapedeck verify`.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isTapedeckError } from '../protocol/errors.js';
import { CURRENT_NAME, ROTATED_NAME, readFileHeader, scanBlocks } from './segment-file.js';

export interface VerifyFileReport {
  name: string;
  seq: number | null;
  committedBytes: number;
  sizeBytes: number;
  blocks: number;
  batches: number;
  updates: number;
  /** Bytes past the committed length: a torn tail, cut on the next open for writing. */
  uncommittedTailBytes: number;
}

export interface VerifyReport {
  ok: boolean;
  files: VerifyFileReport[];
  problems: Array<{ file: string; offset: number | null; code: string; message: string }>;
}

export async function verifyArchive(dir: string): Promise<VerifyReport> {
  const report: VerifyReport = { ok: true, files: [], problems: [] };
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    report.ok = false;
    report.problems.push({ file: dir, offset: null, code: 'TPD_BAD_ARGUMENT', message: 'not a directory' });
    return report;
  }
  const names = (await readdir(dir)).filter((n) => n === CURRENT_NAME || ROTATED_NAME.test(n));
  const headers: Array<{ name: string; seq: number; archiveId: string; committed: number; size: number }> = [];
  for (const name of names) {
    const fh = await open(join(dir, name), 'r');
    try {
      const h = await readFileHeader(fh);
      headers.push({ name, seq: h.seq, archiveId: h.archiveId, committed: h.commit.committedBytes, size: (await fh.stat()).size });
    } catch (err) {
      if (!isTapedeckError(err)) throw err;
      report.problems.push({ file: name, offset: 0, code: err.code, message: err.message });
      report.files.push({ name, seq: null, committedBytes: 0, sizeBytes: 0, blocks: 0, batches: 0, updates: 0, uncommittedTailBytes: 0 });
    } finally {
      await fh.close();
    }
  }
  headers.sort((x, y) => x.seq - y.seq);
  const ids = new Set(headers.map((h) => h.archiveId));
  if (ids.size > 1) report.problems.push({ file: dir, offset: null, code: 'TPD_FOREIGN_FILE', message: `files from ${ids.size} different archives: ${[...ids].join(', ')}` });
  let minTs: number | undefined;
  for (const h of headers) {
    const fh = await open(join(dir, h.name), 'r');
    try {
      const committed = Math.min(h.committed, h.size);
      if (h.committed > h.size) {
        report.problems.push({ file: h.name, offset: h.size, code: 'TPD_CORRUPT_BLOCK', message: `committed length ${h.committed} is past the end of the file (${h.size} bytes)` });
      }
      const res = await scanBlocks(fh, 96, committed, { verify: true, continueAfterError: true, ...(minTs !== undefined ? { minTs } : {}) });
      for (const p of res.problems) report.problems.push({ file: h.name, offset: p.offset, code: p.code, message: p.message });
      for (const b of res.blocks) if (b.type === 2) minTs = b.lastTs;
      report.files.push({
        name: h.name, seq: h.seq, committedBytes: h.committed, sizeBytes: h.size, blocks: res.blocks.length,
        batches: res.batches, updates: res.updates, uncommittedTailBytes: Math.max(0, h.size - h.committed),
      });
    } finally {
      await fh.close();
    }
  }
  report.ok = report.problems.length === 0;
  return report;
}
