import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, open, rename, stat, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Archive, assertArchiveDir, wallClockUs } from '../../storage/index.js';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { compileSpec, noMatchWarning, specMatchesAny, validateGlobs } from '../../protocol/glob.js';
import { parseWallTime } from '../../protocol/time.js';
import { HISTORY_FORMATS, historyChunks, type HistoryFormat } from '../../server/history.js';

/** Progress bar redraws at most this often. */
const PROGRESS_INTERVAL_MS = 200;
const BAR_CHARS = 30;
/**
 * Beside a regular FILE, `FILE.sha256` holds its SHA-256 in sha256sum's form (`HEX  NAME`),
 * so `sha256sum -c FILE.sha256` finds any byte of the export damaged since: NDJSON and CSV
 * have no checksum of their own, and Parquet's optional page CRC is not written by
 * hyparquet-writer.
 */
export const CHECKSUM_SUFFIX = '.sha256';

/** Exit code when the globs match no recorded path: nothing is written (1 is an error, 2 usage). */
export const EXIT_NO_MATCH = 3;

/**
 * `tapedeck export [--archive DIR] [--from T] [--to T] [--glob G]... [--format ndjson|csv|parquet]
 * --out FILE`: writes every update of the matching paths in [from, to] to FILE (the same
 * bytes GET /api/v1/history streams), reading the archive read-only; safe while a server
 * records into it. A progress bar is drawn on stderr when stderr is a terminal. A malformed
 * glob is TPD_BAD_GLOB (exit 1); globs matching no recorded path exit EXIT_NO_MATCH
 * without creating FILE, so an empty file never passes for a successful export. FILE is
 * synced to disk before the exit, and its SHA-256 written beside it (CHECKSUM_SUFFIX).
 */
export async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      archive: { type: 'string', default: 'data' },
      from: { type: 'string' },
      to: { type: 'string' },
      glob: { type: 'string', multiple: true },
      format: { type: 'string', default: 'ndjson' },
      out: { type: 'string' },
    },
  });
  if (!values.out) throw new TapedeckError('TPD_BAD_ARGUMENT', '--out FILE is required');
  const format = values.format as HistoryFormat;
  if (!HISTORY_FORMATS.includes(format)) throw new TapedeckError('TPD_BAD_ARGUMENT', `--format takes ${HISTORY_FORMATS.join(', ')}`);
  const globs = values.glob ?? ['/**'];
  validateGlobs(globs);
  const now = wallClockUs();
  await assertArchiveDir(values.archive); // a mistyped --archive is refused, not exported as nothing
  const archive = await Archive.open(values.archive, { readonly: true });
  try {
    if (values.glob && !specMatchesAny(compileSpec(globs), archive.paths)) {
      const w = noMatchWarning(globs);
      process.stderr.write(`tapedeck: ${w.code}: ${w.message} in ${values.archive}; nothing written to ${values.out}\n`);
      return EXIT_NO_MATCH;
    }
    const firstTs = archive.files.find((f) => f.firstTs !== null)?.firstTs ?? 0;
    const fromUs = values.from === undefined ? 0 : parseWallTime(values.from, now, '--from');
    const toUs = values.to === undefined ? Number.MAX_SAFE_INTEGER : parseWallTime(values.to, now, '--to');
    const lo = Math.max(fromUs, firstTs);
    const hi = Math.min(toUs, archive.lastTs);
    const tty = process.stderr.isTTY === true;
    let batches = 0;
    let lastDraw = 0;
    const draw = (ts: number, final = false): void => {
      const frac = hi > lo ? Math.min(1, Math.max(0, (ts - lo) / (hi - lo))) : 1;
      const filled = Math.round(frac * BAR_CHARS);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(BAR_CHARS - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${batches} batches${final ? '\n' : ''}`);
    };
    const onBatch = (ts: number): void => {
      batches++;
      if (!tty) return;
      const t = Date.now();
      if (t - lastDraw >= PROGRESS_INTERVAL_MS) {
        lastDraw = t;
        draw(ts);
      }
    };
    const chunks = historyChunks(archive, { globs, fromUs, toUs, format }, onBatch);
    const checksum = await writeOut(Readable.from(chunks, { objectMode: false }), values.out);
    if (tty) draw(hi, true);
    process.stderr.write(`exported ${batches} batches to ${values.out}\n`);
    if (checksum) process.stderr.write(`its SHA-256 is in ${checksum}\n`);
    return 0;
  } finally {
    await archive.close();
  }
}

/**
 * Writes the export to `out`, synced to disk, and then (for a regular file) its SHA-256 to
 * `out` + CHECKSUM_SUFFIX, synced and renamed into place; returns that file's name. A
 * checksum file left from an earlier export is removed first, so that it never stands
 * beside another file. A file that cannot be written (a directory, no permission, a full
 * disk) is TPD_IO naming it, not a crash; a regular file left part-written is removed with
 * its checksum, so no export is ever mistaken for a whole one.
 */
async function writeOut(source: Readable, out: string): Promise<string | undefined> {
  const sumFile = out + CHECKSUM_SUFFIX;
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done): void {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  let writing = out;
  let started = false;
  try {
    // A device or pipe (/dev/null) has no file to check beside it, nor anything to sync.
    const regular = (await stat(out).catch(() => undefined))?.isFile() !== false;
    if (regular) await unlink(sumFile).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    started = true;
    await pipeline(source, tap, createWriteStream(out, { flush: regular }));
    if (!(await stat(out)).isFile()) return undefined;
    writing = sumFile;
    const tmp = `${sumFile}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(`${hash.digest('hex')}  ${basename(out)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, sumFile);
    return sumFile;
  } catch (err) {
    let removed = false;
    // Before the export started nothing was touched; after, neither file is whole.
    for (const f of started ? [out, sumFile, `${sumFile}.tmp`] : []) {
      const st = await lstat(f).catch(() => undefined);
      if (st?.isFile() === true && await unlink(f).then(() => true, () => false) && f === out) removed = true;
    }
    const note = removed ? `; the part written to ${out} was removed` : '';
    if (isTapedeckError(err)) throw new TapedeckError(err.code, `${err.message}${note}`, err.details, { cause: err });
    const e = err as NodeJS.ErrnoException;
    throw new TapedeckError('TPD_IO', `cannot write ${writing === out ? `--out ${out}` : writing}: ${e.code ?? e.message}${note}`, undefined, { cause: err });
  }
}
