/**
 * Timestamps at the edges of what the archive keeps (docs/time.md: 1970 to 2^53 µs): a batch
 * at the largest timestamp is kept, and a batch the writer would move after it (an earlier
 * or equal time, or none) is refused, not stamped 2^53, where 2^53 + 1 is 2^53 and the
 * archive's times would stop increasing; what was acknowledged reads back unchanged.
 */
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TS_MAX_US } from '../protocol/value.js';
import { recordingServer } from './helpers/recording-server.js';
import { readArchive } from './helpers/replay.js';

let srv: Awaited<ReturnType<typeof recordingServer>>;
beforeEach(async () => {
  srv = await recordingServer();
});
afterEach(async () => {
  await srv.close();
});

async function post(line: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${line}\n` });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

describe('the largest timestamp', () => {
  it('keeps a batch at 2^53 - 1 µs and refuses, recording nothing, every batch that would have to come after it', async () => {
    expect((await post(`{"ts":${TS_MAX_US},"updates":{"/t/max":1}}`)).status).toBe(200);
    for (const ts of [undefined, TS_MAX_US, 1_763_000_000_000_000, '"2024-05-01T12:00:00Z"']) {
      const a = await post(`{${ts === undefined ? '' : `"ts":${ts},`}"updates":{"/t/after":2}}`);
      expect(a.status, JSON.stringify(a.json)).toBe(400);
      expect(a.json).toMatchObject({ accepted_lines: 0, recorded_updates: 0, rejected_lines: 1 });
      expect((a.json.rejected as Array<{ code: string; message: string }>)[0]?.code).toBe('TPD_BAD_ARGUMENT');
    }
    await srv.close();
    const batches = await readArchive(srv.dir);
    const times = batches.map((b) => b.ts);
    expect(batches.flatMap((b) => b.updates)).toContainEqual(['/t/max', 1]);
    expect(batches.flatMap((b) => b.updates.map((u) => u[0]))).not.toContain('/t/after');
    // Strictly increasing, every one exact.
    for (let i = 1; i < times.length; i++) expect(times[i] as number).toBeGreaterThan(times[i - 1] as number);
    expect(Math.max(...times)).toBe(TS_MAX_US);
    srv = await recordingServer();
  });
});
