import { parseArgs } from 'node:util';
import { TapedeckError } from '../../protocol/errors.js';
import { durationMs } from '../../server/duration.js';
import { Simulator } from '../../server/sim/simulator.js';

/**
 * `tapedeck simulate [--port N] [--host H] [--switches 64] [--interval 1s]
 * [--fault-500-pct P] [--fault-slow-ms M]`: serves the simulated fabric (CSV matrix at
 * /counters, twin flow and graph JSON at /ndt/...) until SIGINT or SIGTERM.
 */
export async function simulateCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '9001' },
      host: { type: 'string', default: '127.0.0.1' },
      switches: { type: 'string', default: '64' },
      interval: { type: 'string', default: '1s' },
      'fault-500-pct': { type: 'string', default: '0' },
      'fault-slow-ms': { type: 'string', default: '0' },
      seed: { type: 'string', default: '42' },
    },
  });
  const int = (name: string, v: string, lo: number, hi: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new TapedeckError('TPD_BAD_ARGUMENT', `--${name} takes an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
    return n;
  };
  const pct = Number(values['fault-500-pct']);
  if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new TapedeckError('TPD_BAD_ARGUMENT', '--fault-500-pct takes a number from 0 to 100');
  const sim = await Simulator.start({
    port: int('port', values.port, 0, 65535),
    host: values.host,
    switches: int('switches', values.switches, 1, 4096),
    intervalMs: durationMs(values.interval, '--interval'),
    fault500Pct: pct,
    faultSlowMs: int('fault-slow-ms', values['fault-slow-ms'], 0, 600_000),
    seed: int('seed', values.seed, 0, 2 ** 31),
  });
  process.stdout.write(`${JSON.stringify({ msg: 'simulator listening', url: sim.url, counters: `${sim.url}/counters`, flows: `${sim.url}/ndt/get_detected_flows`, graph: `${sim.url}/ndt/get_graph_data` })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await sim.close();
  return 0;
}
