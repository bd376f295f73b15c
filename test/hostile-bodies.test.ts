/**
 * A compressed body cannot make the server decode without bound: a remote-write request
 * whose snappy block (10 MB, under remoteWriteBodyBytesMax) expands to 200 MB of series
 * without samples (12 million of them, no sample to count against remoteWriteSamplesMax)
 * is refused with 400 TPD_BAD_REMOTE_WRITE once it passes that many series, and the server
 * stays up and answers /health.
 *
 * The server runs in a child process (the sources through tsx) with a 1 GiB heap: one whose
 * heap runs out dies, and its /health with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingServer, type ChildServer } from './helpers/child-server.js';
import { join } from 'node:path';
import snappy from 'snappy';

/** Uncompressed bytes of the bomb: a WriteRequest of series without samples, 17 bytes each. */
const BOMB_BYTES = 200 * 1024 * 1024;

let server: ChildServer;
let url: string;

beforeAll(async () => {
  server = await startRecordingServer((dir) => ({
    archive_directory: join(dir, 'archive'),
    record: { spec: ['/**'], flush_interval: '0' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'prom', type: 'remote_write' }],
  }), ['--max-old-space-size=1024']);
  url = server.url;
}, 60_000);

afterAll(() => server?.close());

describe('compressed bodies', () => {
  it('refuses a remote-write snappy bomb of series without samples with 400 and stays up', async () => {
    // WriteRequest.timeseries (field 1) of TimeSeries { labels: [{ __name__: "m" }] }, no sample.
    const label = Buffer.concat([Buffer.from([0x0a, 8]), Buffer.from('__name__'), Buffer.from([0x12, 1]), Buffer.from('m')]);
    const series = Buffer.concat([Buffer.from([0x0a, label.length]), label]);
    const entry = Buffer.concat([Buffer.from([0x0a, series.length]), series]);
    const raw = Buffer.alloc(Math.floor(BOMB_BYTES / entry.length) * entry.length);
    for (let i = 0; i < raw.length; i += entry.length) entry.copy(raw, i);
    const body = snappy.compressSync(raw);
    const res = await fetch(`${url}/api/v1/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
      body,
      signal: AbortSignal.timeout(30_000),
    }).catch((err: unknown) => err as Error);
    expect(res instanceof Error ? `${res.message} (server exit ${String(server.exitCode)})` : res.status).toBe(400);
    expect(JSON.stringify(await (res as Response).json())).toContain('TPD_BAD_REMOTE_WRITE');
    const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    expect(health?.status).toBe(200);
    expect(server.exitCode).toBeUndefined();
  }, 60_000);
});
