/** A real recording server (server/main.ts) from a config document, on a free port over a fresh archive. */
import { pino } from 'pino';
import { afterEach, beforeEach } from 'vitest';
import { resolveConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/main.js';
import { tmpDir } from './tmp.js';

export type RecordingServer = RunningServer & { dir: string };

export async function recordingServer(doc: Record<string, unknown> = {}): Promise<RecordingServer> {
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

/**
 * A recording server (recordingServer(doc)) for each test of the file: started before each
 * test and handed to `set`, closed after it.
 */
export function recordingServerEach(set: (srv: RecordingServer) => void, doc: Record<string, unknown> = {}): void {
  let srv: RecordingServer | undefined;
  beforeEach(async () => {
    srv = await recordingServer(doc);
    set(srv);
  });
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });
}
