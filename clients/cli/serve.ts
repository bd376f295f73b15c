import { parseArgs } from 'node:util';
import { EMBEDDED_DEFAULT, loadConfig, resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';

/**
 * `tapedeck serve [--config FILE]`: runs the recorder and server until SIGINT or SIGTERM,
 * then shuts down gracefully and exits 0. Without --config, the embedded default: archive in
 * ./data, the built-in simulator as sources, the server on 127.0.0.1:8080. A second signal
 * during shutdown exits at once with 1.
 */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } } });
  const config = values.config ? await loadConfig(values.config) : resolveConfig(EMBEDDED_DEFAULT, 'embedded default config');
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
