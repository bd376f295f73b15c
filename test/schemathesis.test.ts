/**
 * Schemathesis (installed by scripts/install-schemathesis.sh) generates requests from the
 * server's own /openapi.json: coverage, fuzzing and stateful phases, with every check
 * except "unsupported_method" (unrouted methods answer 404, not 405) and
 * "positive_data_acceptance" (the schemas say "string" where the server also checks the
 * meaning, e.g. that a time parses). No 5xx, every status and content type documented,
 * every body matching its schema.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/main.js';
import { tmpDir } from './helpers/tmp.js';

let running: RunningServer;

beforeAll(async () => {
  const config = resolveConfig({
    archive_directory: await tmpDir('tapedeck-st-'),
    record: { spec: ['/**'], flush_interval: '50ms' },
    publish: { bind: '127.0.0.1:0', rate_limit: null },
    sources: [{ name: 'push', type: 'push' }],
    log_level: 'silent',
  });
  running = await startServer(config);
  await fetch(`${running.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"updates":{"/a/b":1}}\n' });
});

afterAll(async () => {
  await running?.close();
});

describe('OpenAPI conformance', () => {
  it('passes schemathesis against /openapi.json', async () => {
    const args = [
      'run', `${running.url}/openapi.json`,
      '--checks', 'all', '--exclude-checks', 'unsupported_method,positive_data_acceptance',
      '--max-examples', '25', '--seed', '20261123', '--no-color',
    ];
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile('st', args, { maxBuffer: 16 * 1024 * 1024, timeout: 240_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
      });
    });
    expect(r.out).toMatch(/\d+ generated, \d+ passed/);
    expect(r.code, r.out.slice(-3000)).toBe(0);
  }, 300_000);
});
