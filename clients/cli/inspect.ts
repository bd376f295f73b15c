import { parseArgs } from 'node:util';
import { Archive, wallClockUs } from '../../storage/archive.js';
import { assertArchiveDir } from '../../storage/archive-dir.js';
import { BlockType } from '../../storage/codec/frame.js';
import { compileSpec, validateGlobs } from '../../protocol/glob.js';
import { formatTs, parseWallTime } from '../../protocol/time.js';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { valueToJson } from '../../protocol/value-json.js';
import { clipText, terminalText } from './terminal-text.js';

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      paths: { type: 'boolean', default: false },
      glob: { type: 'string', multiple: true },
      at: { type: 'string' },
      head: { type: 'string' },
    },
  });
  const dir = positionals[0];
  if (!dir) throw new TapedeckError('TPD_BAD_ARGUMENT', 'inspect needs an archive directory');
  if (values.glob) validateGlobs(values.glob); // TPD_BAD_GLOB before the archive is opened
  await assertArchiveDir(dir); // a mistyped path is refused, not shown as an empty archive
  const a = await Archive.open(dir, { readonly: true });
  try {
    const files = a.files.map((f) => {
      let blocks = 0;
      let images = 0;
      let batches = 0;
      let updates = 0;
      let catalogDamaged = false;
      if (f.location === 'local') {
        let t;
        try {
          t = a.table(f);
        } catch (err) {
          // A file whose catalog rows are damaged is listed, not fatal: the archive reported
          // it among its problems, and `tapedeck reindex` rebuilds the rows.
          if (!isTapedeckError(err, 'TPD_CORRUPT_CATALOG')) throw err;
          catalogDamaged = true;
          t = { rows: [] };
        }
        blocks = t.rows.length;
        let prev: (typeof t.rows)[number] | undefined;
        for (const r of t.rows) {
          // An image may be cut into consecutive IMAGE frames of one time (storage/frame-parts.ts): one image.
          if (r.type === BlockType.IMAGE && !(prev?.type === BlockType.IMAGE && prev.lastTs === r.lastTs)) images++;
          prev = r;
          if (r.type === BlockType.DELTA) {
            batches += r.batches;
            updates += r.updates;
          }
        }
      }
      return {
        name: f.name, seq: f.seq, location: f.location, sealed: f.sealed,
        first: f.firstTs === null ? null : formatTs(f.firstTs), last: f.lastTs === null ? null : formatTs(f.lastTs),
        bytes: f.committedBytes, blocks, images, batches, updates,
        ...(catalogDamaged ? { catalogDamaged } : {}),
      };
    });
    const totals = files.reduce((t, f) => ({ bytes: t.bytes + f.bytes, batches: t.batches + f.batches, updates: t.updates + f.updates }), { bytes: 0, batches: 0, updates: 0 });
    const summary = {
      directory: dir,
      archiveId: a.archiveId,
      files,
      paths: a.paths.length,
      batches: totals.batches,
      updates: totals.updates,
      bytes: totals.bytes,
      bytesPerUpdate: totals.updates > 0 ? Number((totals.bytes / totals.updates).toFixed(3)) : null,
      problems: a.problems,
    };
    const match = compileSpec(values.glob);
    const out: Record<string, unknown> = { ...summary };
    if (values.paths) out.pathList = a.paths.filter(match);
    if (values.at !== undefined) {
      // The REST forms of the time grammar (docs/time.md): absolute, or relative to now.
      const atUs = parseWallTime(values.at, wallClockUs(), '--at');
      const c = a.cursor(values.glob ? { filter: values.glob } : {});
      await c.seek({ ts: atUs });
      // Values in their JSON form (docs/values.md), through the one codec.
      out.stateAt = { ts: formatTs(atUs), values: Object.fromEntries([...(await c.state())].map(([p, v]) => [p, valueToJson(v)])) };
    }
    if (values.head !== undefined) {
      const n = Number(values.head);
      if (!Number.isInteger(n) || n < 0) throw new TapedeckError('TPD_BAD_ARGUMENT', '--head takes a non-negative integer');
      const c = a.cursor(values.glob ? { filter: values.glob } : {});
      const batches = [];
      for (let i = 0; i < n; i++) {
        const b = await c.next();
        if (!b) break;
        batches.push({ ts: formatTs(b.ts), updates: Object.fromEntries(b.updates.map(([p, v]) => [p, valueToJson(v)])) });
      }
      out.head = batches;
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      return 0;
    }
    const lines = [
      `archive ${dir} (id ${a.archiveId})`,
      `  ${files.length} file(s), ${summary.paths} paths, ${summary.batches} batches, ${summary.updates} updates, ${summary.bytes} bytes` +
        (summary.bytesPerUpdate !== null ? ` (${summary.bytesPerUpdate} bytes/update)` : ''),
      '',
      '  seq  name                          location  first                         last                          bytes        blocks  batches    updates',
      ...files.map((f) =>
        `  ${String(f.seq).padStart(3)}  ${f.name.padEnd(28)}  ${f.location.padEnd(8)}  ${(f.first ?? '-').padEnd(28)}  ${(f.last ?? '-').padEnd(28)}  ${String(f.bytes).padStart(11)}  ${String(f.blocks).padStart(6)}  ${String(f.batches).padStart(7)}  ${String(f.updates).padStart(9)}`),
    ];
    if (a.problems.length > 0) {
      lines.push('', `  ${a.problems.length} problem(s):`);
      for (const p of a.problems) lines.push(`    ${p.file}${p.offset !== undefined ? `@${p.offset}` : ''}: ${p.code}: ${p.message}`);
    }
    if (out.pathList) lines.push('', '  paths:', ...(out.pathList as string[]).map((p) => `    ${p}`));
    if (out.stateAt) {
      const s = out.stateAt as { ts: string; values: Record<string, unknown> };
      lines.push('', `  state at ${s.ts}:`, ...Object.entries(s.values).map(([p, v]) => `    ${p} = ${JSON.stringify(v)}`));
    }
    if (out.head) {
      lines.push('', '  first batches:');
      for (const b of out.head as Array<{ ts: string; updates: Record<string, unknown> }>) {
        lines.push(`    ${b.ts}  ${Object.keys(b.updates).length} update(s): ${clipText(JSON.stringify(b.updates), 160)}`);
      }
    }
    process.stdout.write(lines.map(terminalText).join('\n') + '\n'); // paths and values are recorded data
    return 0;
  } finally {
    await a.close();
  }
}

