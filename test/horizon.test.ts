import { describe, expect, it, onTestFinished } from 'vitest';
import { request } from 'undici';
import { recordingServer } from './helpers/recording-server.js';

const T0 = 1_763_000_000_000_000; // µs

async function get(url: string): Promise<{ status: number; horizon: string; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, horizon: String(res.headers['tapedeck-horizon']), text: await res.body.text() };
}

async function push(url: string, ts: number, v: number, ack: 'memory' | 'durable'): Promise<void> {
  const res = await request(`${url}/api/v1/ingest?ack=${ack}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ ts, updates: { '/h/v': v } }) });
  expect(res.statusCode).toBe(200);
  await res.body.dump();
}

describe('committed horizon', () => {
  it('as-of and history answers hold committed data only and say their horizon; the latest form marks pending values', async () => {
    // No timed flush: nothing is committed until a durable push asks for it.
    const srv = await recordingServer({ record: { spec: ['/**'], flush_interval: '0' } });
    onTestFinished(() => srv.close());
    const u = srv.url;
    await push(u, T0, 1, 'durable');
    await push(u, T0 + 1_000_000, 2, 'memory');

    const latest = await get(`${u}/api/v1/state?glob=/h/*`);
    expect(latest.status).toBe(200);
    expect(JSON.parse(latest.text)).toMatchObject({ ts: T0 + 1_000_000, horizon: T0, pending: true, values: { '/h/v': 2 } });
    expect(latest.horizon).toBe(`2025-11-13T02:13:20.000000Z ${T0}`);

    // `at=now` and a time past the horizon: what a crash cannot take back, nothing newer.
    for (const at of ['now', String(T0 + 5_000_000)]) {
      const asOf = await get(`${u}/api/v1/state?glob=/h/*&at=${at}`);
      expect(JSON.parse(asOf.text)).toMatchObject({ horizon: T0, pending: false, values: { '/h/v': 1 } });
    }
    const history = await get(`${u}/api/v1/history?glob=/h/*`);
    expect(history.text.trim().split('\n').map((l) => (JSON.parse(l) as { updates: Record<string, number> }).updates['/h/v'])).toEqual([1]);
    expect(history.horizon).toContain(String(T0));
    const csv = await get(`${u}/api/v1/history?glob=/h/*&format=csv&from=${T0 + 500_000}`);
    expect(csv.text).toBe('ts,time,path,value\n');
    const paths = await get(`${u}/api/v1/paths`);
    expect(paths.horizon).toContain(String(T0));

    // Once committed, the same questions see the new batch, and nothing is pending.
    await push(u, T0 + 2_000_000, 3, 'durable');
    const after = JSON.parse((await get(`${u}/api/v1/state?glob=/h/*`)).text) as { horizon: number; pending: boolean };
    expect(after).toMatchObject({ horizon: T0 + 2_000_000, pending: false });
    const all = await get(`${u}/api/v1/history?glob=/h/*`);
    expect(all.text.trim().split('\n')).toHaveLength(3);
  });

  it('an empty archive has no horizon', async () => {
    const srv = await recordingServer();
    onTestFinished(() => srv.close());
    const s = await get(`${srv.url}/api/v1/state`);
    expect(s.horizon).toBe('none');
    expect(JSON.parse(s.text)).toMatchObject({ ts: null, horizon: null, pending: false, values: {} });
  });
});
