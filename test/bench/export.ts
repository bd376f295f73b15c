/**
 * Export benchmark: `node --import tsx test/bench/export.ts [--batches 100000 --paths 10]`.
 * Writes an archive of `batches` batches of `paths` updates (numbers, and a short string
 * every tenth path), then exports it whole in each format through historyChunks (what
 * `tapedeck export` and GET /api/v1/history run), counting the bytes. Prints one JSON
 * object: per format the rows per second, the output bytes per row, and the peak RSS
 * growth over the RSS before the export (sampled every 1 000 batches): Parquet holds one
 * row group (SERVER_LIMITS.parquetRowGroupRowsMax rows) at a time, so the growth stays flat
 * however long the range.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Update } from '../../protocol/value.js';
import { historyChunks, type HistoryFormat } from '../../server/history.js';
import { Archive } from '../../storage/index.js';

const { values: args } = parseArgs({ options: { batches: { type: 'string', default: '100000' }, paths: { type: 'string', default: '10' } } });
const BATCHES = Number(args.batches);
const PATHS = Number(args.paths);
const SAMPLE_EVERY_BATCHES = 1_000;
const T0_US = 1_700_000_000_000_000;

async function writeArchive(dir: string): Promise<void> {
  const archive = await Archive.open(dir, { flushIntervalMs: 0 });
  for (let i = 0; i < BATCHES; i++) {
    const updates: Update[] = [];
    for (let p = 0; p < PATHS; p++) updates.push([`/bench/dev-${p}/value`, p % 10 === 9 ? `state-${i % 7}` : i * 0.5 + p]);
    archive.writer!.append(updates, T0_US + i * 1_000);
    if (i % 1_000 === 999) await archive.writer!.drain();
  }
  await archive.writer!.flush();
  await archive.close();
}

async function exportOnce(dir: string, format: HistoryFormat): Promise<Record<string, number>> {
  const archive = await Archive.open(dir, { readonly: true });
  try {
    const rssBeforeBytes = process.memoryUsage().rss;
    let peakRssBytes = rssBeforeBytes;
    let batches = 0;
    const onBatch = (): void => {
      if (++batches % SAMPLE_EVERY_BATCHES === 0) peakRssBytes = Math.max(peakRssBytes, process.memoryUsage().rss);
    };
    let outBytes = 0;
    const t0 = performance.now();
    for await (const chunk of historyChunks(archive, { globs: ['/**'], fromUs: 0, toUs: Number.MAX_SAFE_INTEGER, format }, onBatch)) {
      outBytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    }
    const s = (performance.now() - t0) / 1000;
    const rows = BATCHES * PATHS;
    return {
      rowsPerS: Math.round(rows / s),
      bytesPerRow: Number((outBytes / rows).toFixed(2)),
      outMiB: Number((outBytes / 2 ** 20).toFixed(1)),
      peakRssGrowthMiB: Number(((peakRssBytes - rssBeforeBytes) / 2 ** 20).toFixed(1)),
    };
  } finally {
    await archive.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-export-'));
try {
  await writeArchive(dir);
  const result: Record<string, unknown> = { batches: BATCHES, paths: PATHS, rows: BATCHES * PATHS };
  for (const format of ['ndjson', 'csv', 'parquet'] as const) result[format] = await exportOnce(dir, format);
  console.log(JSON.stringify(result));
} finally {
  await rm(dir, { recursive: true, force: true });
}
