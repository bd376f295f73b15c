import { parseArgs } from 'node:util';
import { rm } from 'node:fs/promises';
import { Archive } from '../../storage/archive.js';
import { fabricBatches } from '../../server/sim/fabric.js';
import { formatTs } from '../../protocol/time.js';
import { TapedeckError } from '../../protocol/errors.js';
import { inspectCommand } from './inspect.js';

/**
 * Writes `seconds` polls (one a second from startUs) of simulated fabric telemetry (64
 * switches x 8 metrics, the paths the built-in simulator serves) into the archive in `dir`,
 * rotating every 10 minutes. Shared by `tapedeck demo` and the first `tapedeck serve`.
 */
export async function recordDemo(dir: string, seconds: number, startUs: number): Promise<void> {
  const a = await Archive.open(dir, { imageFrequencyBytes: 256 * 1024 });
  const w = a.writer!;
  let i = 0;
  for (const b of fabricBatches(42, 64, seconds, startUs)) {
    w.append(b.updates, b.ts);
    if (++i % 600 === 0 && i < seconds) await w.rotate();
  }
  await a.close();
}

/**
 * Records simulated fabric telemetry (64 switches x 8 metrics, one poll per second) for
 * the last N minutes into a fresh archive, rotating every 10 minutes, then inspects it.
 * Stands in for the one-command default until the recorder server exists.
 */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', default: 'data/demo' }, minutes: { type: 'string', default: '30' } } });
  const minutes = Number(values.minutes);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) throw new TapedeckError('TPD_BAD_ARGUMENT', '--minutes takes an integer from 1 to 1440');
  const dir = values.dir;
  await rm(dir, { recursive: true, force: true });
  const seconds = minutes * 60;
  const startUs = (Math.floor(Date.now() / 1000) - seconds) * 1_000_000;
  await recordDemo(dir, seconds, startUs);
  process.stdout.write(`recorded ${seconds} polls of 64 switches x 8 metrics into ${dir}\n\n`);
  const middle = formatTs(startUs + Math.floor(seconds / 2) * 1_000_000);
  return inspectCommand([dir, '--at', middle, '--glob', '/fabric/sw-000/*', '--head', '2']);
}
