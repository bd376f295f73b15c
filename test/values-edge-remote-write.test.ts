/**
 * remote_write at the edges of time and value: a request is recorded whole or refused whole
 * before anything of it is appended (server/sources/remote-write.ts), also when one of its
 * samples is at a time the archive cannot keep (past 2^53 µs); and float64 edges (-0,
 * subnormals, ±Inf, NaN, the stale marker, 162132490.6591326) come back bit for bit.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import snappy from 'snappy';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteRequestSchema } from '../protocol/prompb/gen/remote_pb.js';
import type { Batch } from '../protocol/value.js';
import type { RunningServer } from '../server/main.js';
import { recordingServer } from './helpers/recording-server.js';
import { readAll } from './helpers/replay.js';

let server: (RunningServer & { dir: string }) | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function body(series: Array<{ labels: Record<string, string>; samples: Array<[number, number]> }>): Buffer {
  const req = create(WriteRequestSchema, {
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels).map(([name, value]) => ({ name, value })),
      samples: s.samples.map(([tsMs, value]) => ({ value, timestamp: BigInt(tsMs) })),
    })),
  });
  return snappy.compressSync(Buffer.from(toBinary(WriteRequestSchema, req)));
}

async function post(b: Buffer): Promise<{ status: number; code: string | undefined }> {
  const r = await (server as RunningServer).app.inject({
    method: 'POST', url: '/api/v1/write', payload: b,
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
  });
  return { status: r.statusCode, code: r.body === '' ? undefined : (JSON.parse(r.body) as { error?: { code: string } }).error?.code };
}

async function recorded(s: RunningServer): Promise<Batch[]> {
  await s.archive.writer?.flush();
  return readAll(s.archive.cursor());
}

describe('remote_write edges', () => {
  it('refuses whole, before appending anything, a request with a sample past the largest timestamp', async () => {
    server = await recordingServer({ sources: [{ name: 'prom', type: 'remote_write' }] });
    const now = 1_763_000_000_000;
    for (const far of [Math.floor(Number.MAX_SAFE_INTEGER / 1000) + 1, 2 ** 53 - 1, 9_000_000_000_000_000]) {
      const a = await post(body([
        { labels: { __name__: 'early', i: String(far) }, samples: [[now, 1], [now + 1, 2]] },
        { labels: { __name__: 'late', i: String(far) }, samples: [[far, 3]] },
      ]));
      expect(a.status, String(far)).toBe(400);
      expect(a.code).toMatch(/^TPD_BAD_(ARGUMENT|REMOTE_WRITE)$/);
    }
    expect(await recorded(server)).toEqual([]);
    // The last millisecond the archive keeps is taken.
    const last = Math.floor(Number.MAX_SAFE_INTEGER / 1000);
    expect((await post(body([{ labels: { __name__: 'last' }, samples: [[last, 1]] }]))).status).toBe(204);
    expect((await recorded(server)).map((b) => b.ts)).toEqual([last * 1000]);
  });

  it('records float64 edges bit for bit and the stale marker as null', async () => {
    server = await recordingServer({ sources: [{ name: 'prom', type: 'remote_write' }] });
    const values = [-0, 0, 5e-324, -5e-324, 2.2250738585072014e-308, Number.MAX_VALUE, -Number.MAX_VALUE, Infinity, -Infinity, NaN, 0.1 + 0.2, 162132490.6591326, 2 ** 53 + 2, 1e21, 1e-7];
    const t0 = 1_763_000_000_000;
    expect((await post(body(values.map((v, i) => ({ labels: { __name__: 'v', i: String(i) }, samples: [[t0, v]] }))))).status).toBe(204);
    const [b] = await recorded(server);
    const got = new Map(b?.updates);
    values.forEach((v, i) => expect(Object.is(got.get(`/prom/v/i=${i}`), v), `${i}: ${v}`).toBe(true));
  });
});
