/**
 * Seeks measured in CPU time, for A/B runs of block sizes on a loaded machine (where the
 * wall-time p99 of bench:peers swings tenfold between runs of one build):
 *
 *   node --import tsx test/bench/seek-cpu.ts --archive <dir> --seeks <file> [--rounds 3]
 *
 * Opens the archive read-only and does what bench/peers' Tapedeck side does per seek instant
 * (a fresh cursor, seek, full state by id, first batch), `rounds` times over the instants
 * (one µs timestamp a line, as bench/peers writes them). Prints one JSON object: per round,
 * the process's CPU per seek (process.cpuUsage: every thread, file reads on libuv's
 * included; /proc schedstat is only brought up to date at ticks, too coarse for 1 ms) for
 * the seek alone and with state and first batch, p50/p99/max and mean in ms, and wall time
 * the same way. Round 1 is cold (JIT, block cache), as bench:peers measures; later ones warm.
 * `warm` pools rounds 2 to the last: with --rounds 8, a p99 of 1 400 seeks, where one round's
 * p99 (its second-worst seek) swings with where a collection or a compilation falls.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Archive } from '../../storage/archive.js';
import { loadNativeCodec } from '../../storage/native-codec-file.js';

const { values: args } = parseArgs({
  options: {
    archive: { type: 'string' },
    seeks: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});
if (!args.archive || !args.seeks) throw new Error('--archive and --seeks are required');
const seeks = readFileSync(args.seeks, 'utf8').split('\n').filter((l) => l !== '').map(Number);

/** This process's CPU time so far (every thread, user + system), ms: getrusage, exact to the µs at any instant. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function spread(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number => Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 1000) / 1000;
  return { p50: at(0.5), p99: at(0.99), max: at(1) };
}

// The addon's CRC32C, as a server's process has it (a read-only open does not probe it).
loadNativeCodec();
const a = await Archive.open(args.archive, { readonly: true });
const rounds: object[] = [];
let statePathsMin = Infinity;
const warmSeek: number[] = [];
const warmAll: number[] = [];
for (let r = 0; r < Number(args.rounds); r++) {
  const cpuSeek: number[] = [];
  const cpuAll: number[] = [];
  const wallSeek: number[] = [];
  const wallAll: number[] = [];
  for (const t of seeks) {
    const c = a.cursor();
    const c0 = cpuMs();
    const w0 = performance.now();
    await c.seek({ ts: t });
    const c1 = cpuMs();
    const w1 = performance.now();
    const st = await c.stateById();
    await c.nextRaw();
    const c2 = cpuMs();
    const w2 = performance.now();
    cpuSeek.push(c1 - c0);
    cpuAll.push(c2 - c0);
    wallSeek.push(w1 - w0);
    wallAll.push(w2 - w0);
    statePathsMin = Math.min(statePathsMin, st.size);
  }
  if (r > 0) {
    warmSeek.push(...cpuSeek);
    warmAll.push(...cpuAll);
  }
  rounds.push({
    round: r + 1,
    cpuMs: { seek: spread(cpuSeek), seekStateFirstBatch: spread(cpuAll), meanSeekStateFirstBatch: Math.round((cpuAll.reduce((x, y) => x + y, 0) / seeks.length) * 1000) / 1000 },
    wallMs: { seek: spread(wallSeek), seekStateFirstBatch: spread(wallAll) },
  });
}
await a.close();
const warm = warmSeek.length === 0 ? null : { rounds: `2-${rounds.length}`, cpuMs: { seek: spread(warmSeek), seekStateFirstBatch: spread(warmAll) } };
process.stdout.write(`${JSON.stringify({ bench: 'seek-cpu', archive: args.archive, seeks: seeks.length, statePathsMin, rounds, warm })}\n`);
