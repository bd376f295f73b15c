/** A real recording server (server/main.ts) from a config document, on a free port over a fresh archive. */
import { pino } from 'pino';
import { resolveConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/main.js';
import { tmpDir } from './tmp.js';

export async function recordingServer(doc: Record<string, unknown> = {}): Promise<RunningServer & { dir: string }> {
  const dir = await tmpDir('tapedeck-srv-');
  const config = resolveConfig({
    archive_directory: dir,
    record: { spec: ['/**'], flush_interval: '0' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'push', type: 'push' }],
    ...doc,
  });
  const srv = await startServer(config, { logger: pino({ level: 'silent' }) });
  return { ...srv, dir };
}
