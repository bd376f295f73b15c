import { parseArgs } from 'node:util';
import { compactArchive } from '../../storage/compact-archive.js';
import { TapedeckError } from '../../protocol/errors.js';

/** `tapedeck compact <archive-dir>`: sealed files re-encoded into larger blocks, with no server running (storage/compact-archive.ts). */
export async function compactCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean', default: false } } });
  const dir = positionals[0];
  if (!dir) throw new TapedeckError('TPD_BAD_ARGUMENT', 'compact needs an archive directory');
  const t0 = performance.now();
  const files = await compactArchive(dir, {
    onFile: (r) => {
      if (values.json) return;
      const what = r.skipped !== undefined ? `skipped (${r.skipped})` : `${r.before} -> ${r.after} bytes, ${r.deltasBefore} -> ${r.deltasAfter} delta blocks`;
      process.stdout.write(`${r.name}: ${what}\n`);
    },
  });
  const done = files.filter((f) => f.skipped === undefined);
  const before = done.reduce((s, f) => s + f.before, 0);
  const after = done.reduce((s, f) => s + f.after, 0);
  const ms = Math.round(performance.now() - t0);
  if (values.json) process.stdout.write(JSON.stringify({ files, compacted: done.length, bytes_before: before, bytes_after: after, ms }) + '\n');
  else process.stdout.write(`compacted ${done.length} of ${files.length} file(s): ${before} -> ${after} bytes in ${ms} ms\n`);
  return 0;
}
