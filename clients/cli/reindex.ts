import { parseArgs } from 'node:util';
import { reindexArchive } from '../../storage/reindex.js';
import { TapedeckError } from '../../protocol/errors.js';

export async function reindexCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  const dir = positionals[0];
  if (!dir) throw new TapedeckError('TPD_BAD_ARGUMENT', 'reindex needs an archive directory');
  const t0 = performance.now();
  const a = await reindexArchive(dir);
  const t = a.totals();
  const problems = a.problems.length;
  await a.close();
  process.stdout.write(`reindexed ${dir}: ${a.files.length} file(s), ${t.blocks} blocks, ${t.batches} batches, ${a.paths.length} paths in ${Math.round(performance.now() - t0)} ms` +
    (problems > 0 ? `; ${problems} problem(s), run tapedeck verify` : '') + '\n');
  return problems > 0 ? 1 : 0;
}
