/**
 * The latest state of a recorder whose only batch is at 0 µs (1970-01-01T00:00:00Z, the
 * time contract's first instant): /state said `"ts":null,"time":null` beside the values,
 * taking the recorder's 0 for "no batch yet".
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { recordingServer } from './helpers/recording-server.js';

let srv: Awaited<ReturnType<typeof recordingServer>> | undefined;

afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

async function state(): Promise<{ ts: number | null; time: string | null; values: Record<string, unknown> }> {
  const res = await request(`${srv!.url}/api/v1/state`);
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as { ts: number | null; time: string | null; values: Record<string, unknown> };
}

describe('the latest state at 0 µs', () => {
  it('says ts 0 for a batch recorded at 0, and null before any batch', async () => {
    srv = await recordingServer();
    expect(await state()).toMatchObject({ ts: null, time: null, values: {} });
    const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"ts":0,"updates":{"/z/a":1}}\n' });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(await state()).toMatchObject({ ts: 0, time: '1970-01-01T00:00:00.000000Z', values: { '/z/a': 1 } });
  });
});
