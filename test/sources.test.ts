import { describe, expect, it } from 'vitest';
import type { PollEvent, Source } from '../server/sources/source.js';
import { rig, upstream, waitFor, type Reply } from './helpers/upstreams.js';

const T0 = 1_763_000_000_000; // epoch ms

/** Resolves after the source's n-th poll event (counting from now); returns them all. */
function polls(s: Source, n: number, timeoutMs = 20_000): Promise<PollEvent[]> {
  const seen: PollEvent[] = [];
  return waitFor<PollEvent>(s, 'poll', (e) => {
    seen.push(e);
    return seen.length >= n;
  }, timeoutMs).then(() => seen);
}

describe('csv-matrix source', () => {
  it('records changed cells only, honours ETag/304 and X-Snapshot-Ts, survives malformed CSV and a changed header', async () => {
    const csv = (ts: number, etag: string, body: string): Reply => ({ headers: { etag, 'x-snapshot-ts': String(ts), 'content-type': 'text/csv' }, body });
    const script = [
      csv(T0, '"v1"', 'switch_id,cpu,temp\nsw-1,10.5,40\nsw-2,11,41\n'),
      null, // expects If-None-Match "v1" -> 304
      csv(T0 + 1000, '"v2"', 'switch_id,cpu,temp\r\nsw-1,12,40\r\nsw-2,11,41\r\n'),
      csv(T0 + 2000, '"v3"', 'switch_id,cpu,temp\nsw-1,1\n'), // malformed: a short row
      csv(T0 + 3000, '"v4"', 'switch_id,cpu,mem\nsw-1,12,70\nsw-2,11,"71"\n'), // temp gone, mem new
    ];
    const up = await upstream((n, req) => {
      const r = script[n];
      if (r) return r;
      const etag = n === 1 ? '"v1"' : '"v4"';
      return req.headers['if-none-match'] === etag ? { status: 304 } : { status: 500, body: 'expected If-None-Match' };
    });
    const r = await rig();
    const s = r.add('csv-matrix', 'fab', { url: `${up.url}/counters`, interval: '5ms', backoff_initial: '5ms' });
    const done = polls(s, 7);
    s.start();
    const events = await done;
    await r.close();
    await up.close();

    expect(events.map((e) => (e.ok ? (e.notModified ? '304' : 'ok') : 'fail'))).toEqual(['ok', '304', 'ok', 'fail', 'ok', '304', '304']);
    expect(up.requests[1]?.['if-none-match']).toBe('"v1"');
    expect(up.requests[4]?.['if-none-match']).toBe('"v2"'); // the malformed v3 never became the reference
    const h = s.health();
    expect(h).toMatchObject({ failures: 1, consecutiveFailures: 0, notModified: 3, batches: 3 });
    expect(h.lastError?.message).toMatch(/malformed CSV: line 2 has 2 fields, the header has 3/);
    expect(await r.readBack()).toEqual([
      { ts: T0 * 1000, updates: [['/fab/sw-1/cpu', 10.5], ['/fab/sw-1/temp', 40], ['/fab/sw-2/cpu', 11], ['/fab/sw-2/temp', 41]] },
      { ts: (T0 + 1000) * 1000, updates: [['/fab/sw-1/cpu', 12]] },
      { ts: (T0 + 3000) * 1000, updates: [['/fab/sw-1/mem', 70], ['/fab/sw-2/mem', 71], ['/fab/sw-1/temp', null], ['/fab/sw-2/temp', null]] },
    ]);
  });

  it('retries 500s with growing, jittered delays and recovers', async () => {
    const at: number[] = [];
    const up = await upstream((n) => {
      at.push(performance.now());
      return n < 4 ? { status: 500, body: 'boom' } : { body: 'id,x\na,1\n' };
    });
    const r = await rig();
    const s = r.add('csv-matrix', 'm', { url: up.url, interval: '1s', backoff_initial: '40ms', backoff_max: '1s' });
    const done = waitFor<PollEvent>(s, 'poll', (e) => e.ok);
    const failures: number[] = [];
    s.on('poll', (e: PollEvent) => {
      if (!e.ok) failures.push(s.health().consecutiveFailures);
    });
    s.start();
    await done;
    const h = s.health();
    await r.close();
    await up.close();
    expect(failures).toEqual([1, 2, 3, 4]);
    expect(h).toMatchObject({ status: 'ok', failures: 4, consecutiveFailures: 0, batches: 1 });
    expect(h.lastError?.message).toBe('upstream answered HTTP 500');
    // Retry n waits a random time in [d/2, d] with d = 40 ms x 2^(n-1).
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(79);
    expect(gaps[3]).toBeGreaterThanOrEqual(159);
    expect(await r.readBack()).toEqual([expect.objectContaining({ updates: [['/m/a/x', 1]] })]);
  });

  it('times out a hanging upstream, and a slow source never delays a fast one', async () => {
    const slow = await upstream((n) => (n === 0 ? { hang: true } : { body: 'id,x\nb,2\n' }));
    const fast = await upstream(() => ({ body: 'id,x\na,1\n' }));
    const r = await rig();
    const sSlow = r.add('csv-matrix', 'slow', { url: slow.url, interval: '5ms', timeout: '1500ms', backoff_initial: '5ms' });
    const sFast = r.add('csv-matrix', 'fast', { url: fast.url, interval: '5ms' });
    const fastTen = polls(sFast, 10);
    const slowFirst = waitFor<PollEvent>(sSlow, 'poll');
    sSlow.start();
    sFast.start();
    await fastTen;
    // Ten fast polls came and went while the slow source's first request still hangs.
    expect(sSlow.health().polls).toBe(0);
    expect(slow.requests).toHaveLength(1);
    const first = await slowFirst;
    expect(first.ok).toBe(false);
    expect(!first.ok && first.error.message).toMatch(/no complete answer within 1500 ms/);
    await waitFor<PollEvent>(sSlow, 'poll', (e) => e.ok);
    await r.close();
    await slow.close();
    await fast.close();
    const paths = new Set((await r.readBack()).flatMap((b) => b.updates.map((u) => u[0])));
    expect(paths).toEqual(new Set(['/fast/a/x', '/slow/b/x']));
  });
});

describe('http-json source', () => {
  it('maps a document whole or exploded to leaf paths, one batch per response', async () => {
    const doc = { a: { b: [1, { c: null }], d: {} }, 'e/f': 'x' };
    const up = await upstream((n) => (n === 1 ? { body: 'not json' } : { body: JSON.stringify(doc) }));
    const r = await rig();
    const whole = r.add('http-json', 'w', { url: up.url, path: '/twin/doc', mode: 'whole', interval: '1h' });
    const leaves = r.add('http-json', 'l', { url: up.url, mode: 'leaves', interval: '1h', backoff_initial: '5ms' });
    const w1 = waitFor<PollEvent>(whole, 'poll');
    whole.start();
    expect((await w1).ok).toBe(true);
    const l2 = polls(leaves, 2);
    leaves.start();
    const ev = await l2;
    await r.close();
    await up.close();
    expect(ev[0]?.ok).toBe(false); // request 1 answered "not json"
    expect(!ev[0]?.ok && ev[0]?.error.message).toMatch(/not JSON/);
    const batches = await r.readBack();
    expect(batches.map((b) => b.updates)).toEqual([
      [['/twin/doc', doc]],
      [['/l/a/b/0', 1], ['/l/a/b/1/c', null], ['/l/a/d', {}], ['/l/e%2Ff', 'x']],
    ]);
  });

  it('with snapshot_header, stamps each batch with the snapshot time and records a snapshot once', async () => {
    const T = 1_767_000_000_000; // ms
    // Snapshots 1, 1 (unchanged upstream), 2, then a response without the header.
    const times = [T, T, T + 1000];
    const up = await upstream((n) => (n < times.length ? { headers: { 'x-snapshot-ts': String(times[n]) }, body: JSON.stringify({ v: n }) } : { body: '{"v":9}' }));
    const r = await rig();
    const s = r.add('http-json', 'tw', { url: up.url, path: '/tw', interval: '5ms', snapshot_header: 'X-Snapshot-Ts' });
    const four = polls(s, 4);
    s.start();
    expect((await four).every((e) => e.ok)).toBe(true);
    await r.close();
    await up.close();
    const batches = await r.readBack();
    expect(batches.slice(0, 2)).toEqual([
      { ts: T * 1000, updates: [['/tw', { v: 0 }]] },
      { ts: (T + 1000) * 1000, updates: [['/tw', { v: 2 }]] },
    ]);
    // Without the header the batch is stamped on arrival, as without snapshot_header.
    expect(batches[2]?.updates).toEqual([['/tw', { v: 9 }]]);
    expect(batches[2]!.ts).toBeGreaterThan((T + 1000) * 1000);
  });

  it('records only what the spec selects, once per path however many globs match', async () => {
    const up = await upstream(() => ({ body: 'id,cpu,mem\nsw-1,1,2\nsw-2,3,4\n' }));
    const r = await rig(['/fab/sw-1/**', '/fab/*/cpu', '/fab/sw-1/cpu']);
    const s = r.add('csv-matrix', 'fab', { url: up.url, interval: '1h' });
    const p = waitFor<PollEvent>(s, 'poll');
    s.start();
    await p;
    await r.close();
    await up.close();
    expect((await r.readBack()).map((b) => b.updates)).toEqual([[['/fab/sw-1/cpu', 1], ['/fab/sw-1/mem', 2], ['/fab/sw-2/cpu', 3]]]);
  });
});
