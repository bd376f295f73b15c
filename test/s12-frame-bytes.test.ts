/**
 * Session frames bounded in bytes, against a real server on a free port and real
 * WebSockets. A `batches` frame was bounded only by counts (frameBatchesMax 256,
 * frameUpdatesMax 16 384): 40 batches of a 4 MiB string made one frame of 160 MiB, past
 * what a ws client takes by default (100 MiB), which closed the stream with 1009. Now a
 * frame stops before the batch that would take it past frameBytesMax, in both formats, on
 * the column path (unlimited play) and the batch-by-batch path (a burst); a batch larger
 * than that goes whole, alone. The TypeScript client takes the largest frame the server
 * sends (PROTOCOL_LIMITS.streamFrameBytesMax), here a JSON batch frame of 120 MiB.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FrameDecoder } from '../protocol/frames.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import type { Batch, Value } from '../protocol/value.js';
import { PLAYBACK_DEFAULTS } from '../server/sessions/manager.js';
import { TapedeckClient, type StreamFrame } from '../clients/client/index.js';
import { api, startServer, type TestServer } from './helpers/server.js';

const MiB = 1024 * 1024;
const T0 = 1_700_000_000_000_000;

let server: TestServer | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await server?.close();
  server = undefined;
});

/** Batch i: a big string of its own letter and length, and a counter; small numeric batches between. */
function workload(big: number): Batch[] {
  const out: Batch[] = [];
  let ts = T0;
  for (let i = 0; i < big; i++) {
    out.push({ ts: (ts += 1000), updates: [['/big/text', String.fromCharCode(97 + (i % 26)).repeat(4 * MiB - i)], ['/big/i', i]] });
    for (let j = 0; j < 3; j++) out.push({ ts: (ts += 1000), updates: [['/small/n', i * 10 + j]] });
  }
  return out;
}

interface Message {
  bytes: number;
  batches: Array<{ ts: number; updates: Array<[string, Value]> }>;
}

/** Every message of a session stream with ?coalesce=true, its size and the batches it held. */
async function openStream(base: string, id: string, format: 'json' | 'msgpack'): Promise<{ messages: Message[]; until: (pred: () => boolean) => Promise<void> }> {
  const q = format === 'msgpack' ? '?coalesce=true&format=msgpack' : '?coalesce=true';
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream${q}`, { maxPayload: PROTOCOL_LIMITS.streamFrameBytesMax });
  sockets.push(ws);
  const decoder = new FrameDecoder();
  const messages: Message[] = [];
  let wake = (): void => undefined;
  let closed = false;
  ws.on('message', (data: Buffer, binary: boolean) => {
    const frames = decoder.decode(data, binary);
    const batches = frames.flatMap((f) => (f.type === 'batch' ? [{ ts: f.ts, updates: f.updates }] : []));
    messages.push({ bytes: data.length, batches });
    wake();
  });
  ws.on('close', () => {
    closed = true;
    wake();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const until = async (pred: () => boolean): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (!pred()) {
      if (closed) throw new Error('stream closed');
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 1000);
      });
    }
  };
  return { messages, until };
}

function checkFrames(messages: Message[], want: Batch[]): void {
  const got = messages.flatMap((m) => m.batches);
  expect(got.map((b) => b.ts)).toEqual(want.map((b) => b.ts));
  for (const [k, b] of got.entries()) expect(b.updates).toEqual((want[k] as Batch).updates);
  const withBatches = messages.filter((m) => m.batches.length > 0);
  for (const m of withBatches) if (m.batches.length > 1) expect(m.bytes).toBeLessThanOrEqual(PLAYBACK_DEFAULTS.frameBytesMax);
  // Still coalesced: a big batch and the small ones after it share a frame.
  expect(withBatches.some((m) => m.batches.length > 1)).toBe(true);
  expect(withBatches.length).toBeLessThan(want.length);
}

describe('session frames bounded in bytes', () => {
  for (const format of ['json', 'msgpack'] as const) {
    it(`cuts unlimited play into frames of at most frameBytesMax, every batch whole and in order (${format})`, { timeout: 120_000 }, async () => {
      const want = workload(40);
      server = await startServer(want, {}, { imageFrequencyBytes: 0 });
      const created = await api(server.url, 'POST', '/api/v1/sessions', { speed: 'unlimited' });
      const s = await openStream(server.url, created.body.id as string, format);
      await s.until(() => s.messages.reduce((n, m) => n + m.batches.length, 0) >= want.length);
      checkFrames(s.messages, want);
    });

    it(`cuts a burst into frames of at most frameBytesMax, every batch whole and in order (${format})`, { timeout: 120_000 }, async () => {
      const want = workload(40);
      server = await startServer(want, {}, { imageFrequencyBytes: 0 });
      const created = await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause' });
      const id = created.body.id as string;
      const s = await openStream(server.url, id, format);
      const burst = await api(server.url, 'PATCH', `/api/v1/sessions/${id}`, { burst: want.length });
      expect(burst.status).toBe(200);
      await s.until(() => s.messages.reduce((n, m) => n + m.batches.length, 0) >= want.length);
      checkFrames(s.messages, want);
    });
  }

  // The largest batch frame: 48 M control characters (STORAGE_LIMITS.batchBytesMax) are a
  // 288 MiB JSON frame, which with its copies in this one process (the server's writer and
  // take(), the client's buffer and text) needs more than 1 GiB. 20 M of them (120 MiB)
  // are past ws's default of 100 MiB, which is what closed the stream before.
  it('gives the TypeScript client a single JSON batch frame of 120 MiB, whole', { timeout: 120_000 }, async () => {
    const text = '\u0001'.repeat(20 * MiB);
    const want: Batch[] = [{ ts: T0, updates: [['/huge', text]] }, { ts: T0 + 1000, updates: [['/after', 1]] }];
    server = await startServer(want, {}, { imageFrequencyBytes: 0 });
    const client = new TapedeckClient(server.url);
    const session = await client.createSession({ pos: 'beginning', state: 'pause' });
    const stream = client.stream(session.id, { reconnect: false });
    await stream.ready();
    const seen: StreamFrame[] = [];
    let burstSent = false;
    for await (const f of stream) {
      seen.push(f);
      if (f.type === 'controls' && !burstSent) {
        burstSent = true;
        stream.burst(2);
      }
      if (f.type === 'batch' && f.ts === T0 + 1000) break;
    }
    stream.close();
    const batches = seen.flatMap((f) => (f.type === 'batch' ? [f] : []));
    expect(batches.map((b) => b.ts)).toEqual([T0, T0 + 1000]);
    expect((batches[0]?.updates[0]?.[1] as string).length).toBe(text.length);
    expect(batches[0]?.updates[0]?.[1] === text).toBe(true);
    expect(seen.some((f) => f.type === 'reconnected' || f.type === 'error')).toBe(false);
  });
});
