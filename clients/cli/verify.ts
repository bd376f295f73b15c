import { parseArgs } from 'node:util';
import { verifyArchive } from '../../storage/verify.js';
import { TapedeckError } from '../../protocol/errors.js';
import { terminalText } from './terminal-text.js';

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean', default: false } } });
  const dir = positionals[0];
  if (!dir) throw new TapedeckError('TPD_BAD_ARGUMENT', 'verify needs an archive directory');
  const r = await verifyArchive(dir);
  if (values.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  } else {
    for (const f of r.files) {
      const tail = f.uncommittedTailBytes > 0 ? `, ${f.uncommittedTailBytes} uncommitted tail bytes (cut on next open)` : '';
      process.stdout.write(`${f.name}: ${f.blocks} blocks, ${f.batches} batches, ${f.updates} updates, ${f.committedBytes} committed bytes${tail}\n`);
    }
    for (const p of r.problems) process.stdout.write(terminalText(`BAD ${p.file}${p.offset !== null ? ` at offset ${p.offset}` : ''}: ${p.code}: ${p.message}`) + '\n');
    process.stdout.write(r.ok ? `ok: ${r.files.length} file(s) verified clean\n` : `FAILED: ${r.problems.length} problem(s)\n`);
  }
  return r.ok ? 0 : 1;
}
