/**
 * tapedeck inspect counts images, not IMAGE frames: an image cut into consecutive IMAGE
 * frames of one time (cac490d, storage/frame-parts.ts; parts of 4 KiB in this process) is
 * one image, as the writer counts it (tapedeck_archive_images_total).
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { BlockType } from '../storage/codec/frame.js';
import { run } from '../clients/cli/main.js';
import { tmpDir } from './helpers/tmp.js';
import { lowerPartBytes, partsBatch } from './helpers/s12-parts-workload.js';

lowerPartBytes();

/** Runs a CLI command in this process and returns its stdout. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const out = process.stdout.write;
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
  try {
    return { code: await run(args), stdout };
  } finally {
    process.stdout.write = out;
  }
}

describe('inspect over images in parts', () => {
  it('counts each image once, however many IMAGE frames it takes', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024 });
    for (let i = 0; i < 300; i++) {
      const b = partsBatch(i);
      a.writer!.append(b.updates, b.ts);
      if (i % 20 === 19) await a.writer!.flush();
      if (i === 149) await a.writer!.rotate();
    }
    await a.close();
    const r = await Archive.open(dir, { readonly: true });
    let frames = 0;
    let images = 0;
    try {
      for (const f of r.files) {
        const rows = r.table(f).rows;
        rows.forEach((row, i) => {
          if (row.type !== BlockType.IMAGE) return;
          frames++;
          const prev = rows[i - 1];
          if (!(prev?.type === BlockType.IMAGE && prev.lastTs === row.lastTs)) images++;
        });
      }
    } finally {
      await r.close();
    }
    expect(frames).toBeGreaterThan(images + 5);
    const res = await cli('inspect', dir, '--json');
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { files: Array<{ images: number }> };
    expect(summary.files.length).toBe(2);
    expect(summary.files.reduce((n, f) => n + f.images, 0)).toBe(images);
  });
});
