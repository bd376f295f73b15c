import { parseArgs } from 'node:util';
import { readdir } from 'node:fs/promises';
import { TapedeckError } from '../../protocol/errors.js';
import { EMBEDDED_DEFAULT, loadConfig, resolveConfig, type ServeConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';
import { recordDemo } from './demo.js';

/**
 * Simulated history the first `tapedeck serve` without --config writes into an archive
 * directory that holds no archive yet, so the README's tour has a past to replay: ten
 * minutes, one poll a second, ending a second ago (about 300 k updates, written in well
 * under a second, before the live simulator takes over).
 */
export const SEED_SECONDS = 10 * 60;

/**
 * `tapedeck serve [--config FILE] [--port N] [--archive DIR]`: runs the recorder and server
 * until SIGINT or SIGTERM, then shuts down gracefully and exits 0. Without --config, the
 * embedded default: archive in ./data, the built-in simulator as sources, the server on
 * 127.0.0.1:8080. --port and --archive override the config's (or the default's) publish
 * port and archive directory. A second signal during shutdown exits at once with 1.
 */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, port: { type: 'string' }, archive: { type: 'string' } } });
  const base = values.config ? await loadConfig(values.config) : resolveConfig(EMBEDDED_DEFAULT, 'embedded default config');
  const config = withOverrides(base, values.port, values.archive);
  if (!values.config && await holdsNoArchive(config.archiveDirectory)) {
    await recordDemo(config.archiveDirectory, SEED_SECONDS, (Math.floor(Date.now() / 1000) - SEED_SECONDS) * 1_000_000);
    process.stderr.write(`tapedeck: first start: seeded ${config.archiveDirectory} with ${SEED_SECONDS / 60} minutes of simulated history\n`);
  }
  let srv: Awaited<ReturnType<typeof startServer>>;
  try {
    srv = await startServer(config);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES' && e.code !== 'EADDRNOTAVAIL') throw err;
    process.stderr.write(`tapedeck: cannot listen on ${config.publish.host}:${config.publish.port}: ${e.code}\n`);
    return 1;
  }
  srv.log.info({ url: `${srv.url}/` }, `web player at ${srv.url}/`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  srv.log.info({ signal }, 'signal received');
  const again = (): void => {
    srv.log.error('second signal during shutdown: exiting now');
    process.exit(1);
  };
  process.once('SIGINT', again);
  process.once('SIGTERM', again);
  await srv.close();
  return 0;
}

/** The config with --port and --archive applied (the resolved config is frozen: a copy). */
export function withOverrides(config: ServeConfig, port: string | undefined, archive: string | undefined): ServeConfig {
  let out = config;
  if (port !== undefined) {
    const n = Number(port);
    if (!/^\d{1,5}$/.test(port) || n > 65535) throw new TapedeckError('TPD_BAD_ARGUMENT', `--port takes a port number from 0 to 65535, got ${JSON.stringify(port)}`);
    out = { ...out, publish: { ...out.publish, port: n } };
  }
  if (archive !== undefined) {
    if (archive === '') throw new TapedeckError('TPD_BAD_ARGUMENT', '--archive takes a directory');
    out = { ...out, archiveDirectory: archive };
  }
  return Object.freeze(out);
}

/** True when `dir` is missing or empty: nothing recorded there yet, nothing a seed could disturb. */
async function holdsNoArchive(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'ENOTDIR') throw new TapedeckError('TPD_BAD_ARGUMENT', `archive directory ${dir} is not a directory (or a parent of it is not)`, undefined, { cause: err });
    throw err;
  }
}
