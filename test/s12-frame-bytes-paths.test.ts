/**
 * msgpack `paths` frames against a real server on a free port and real WebSockets. A msgpack
 * stream names a path by its id, told once per connection in a `paths` frame sent just
 * before the first frame that uses it. Behind a `paths` frame of megabytes (300 000 paths)
 * the frame itself went past the client's unread high mark and counted against
 * wsSessionOverflowBytesMax (4 MiB): the stream closed with 4008 at every attach, and the
 * client reconnected into the same close. Now the paths go first, in frames of about
 * frameBytesMax, and the frame waits for the client to read them like any frame.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FrameDecoder, type DecodedFrame } from '../protocol/frames.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import { wallClockUs } from '../storage/index.js';
import type { Batch, Update } from '../protocol/value.js';
import { PLAYBACK_DEFAULTS } from '../server/sessions/manager.js';
import { api, startServer, type TestServer } from './helpers/server.js';

const PATHS = 320_000;
let server: TestServer | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await server?.close();
  server = undefined;
});

function many(prefix: string, k: number): Update[] {
  const out: Update[] = [];
  for (let i = 0; i < PATHS; i++) out.push([`${prefix}/p${String(i).padStart(7, '0')}`, i + k]);
  return out;
}

/** A msgpack stream: every message's first frame type and size, decoded frames, and the close code. */
function open(base: string, id: string): { seen: Array<{ type: string; bytes: number }>; frames: DecodedFrame[]; closed: () => number; until: (pred: () => boolean) => Promise<void> } {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream?format=msgpack&coalesce=true`, { maxPayload: PROTOCOL_LIMITS.streamFrameBytesMax });
  sockets.push(ws);
  const dec = new FrameDecoder();
  const seen: Array<{ type: string; bytes: number }> = [];
  const frames: DecodedFrame[] = [];
  let code = 0;
  let wake = (): void => undefined;
  ws.on('message', (d: Buffer, binary: boolean) => {
    const fs = dec.decode(d, binary);
    seen.push({ type: fs[0]?.type ?? 'paths', bytes: d.length });
    frames.push(...fs);
    wake();
  });
  ws.on('close', (c) => {
    code = c;
    wake();
  });
  const until = async (pred: () => boolean): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (!pred()) {
      if (code !== 0) throw new Error(`stream closed with ${code}; seen ${JSON.stringify(seen.slice(0, 10))}`);
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 500);
      });
    }
  };
  return { seen, frames, closed: () => code, until };
}

describe('msgpack paths frames', () => {
  it('attaches to a session over 320 000 paths: its paths in frames of about frameBytesMax, then the whole state', { timeout: 120_000 }, async () => {
    const t0 = 1_700_000_000_000_000;
    const want: Batch[] = [{ ts: t0, updates: many('/many', 0.5) }];
    server = await startServer(want, {}, { imageFrequencyBytes: 0 });
    const created = await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause', pos: 'end' });
    const s = open(server.url, created.body.id as string);
    await s.until(() => s.frames.some((f) => f.type === 'controls'));
    const state = s.frames.find((f) => f.type === 'state');
    expect(state && state.type === 'state' ? Object.keys(state.values).length : 0).toBe(PATHS);
    const paths = s.seen.filter((m) => m.type === 'paths');
    expect(paths.length).toBeGreaterThan(1);
    for (const m of paths) expect(m.bytes).toBeLessThanOrEqual(PLAYBACK_DEFAULTS.frameBytesMax + 64 * 1024);
    expect(s.closed()).toBe(0);
  });

  it('tails a batch of 320 000 new paths: its paths first, then the batch whole', { timeout: 120_000 }, async () => {
    server = await startServer([{ ts: wallClockUs() - 1_000_000, updates: [['/first', 1]] }], {}, { imageFrequencyBytes: 0 });
    const created = await api(server.url, 'POST', '/api/v1/sessions', { state: 'tail' });
    const s = open(server.url, created.body.id as string);
    await s.until(() => s.frames.some((f) => f.type === 'controls'));
    const ts = wallClockUs();
    server.archive.writer!.append(many('/late', 0.25), ts);
    await server.archive.writer!.flush();
    await s.until(() => s.frames.some((f) => f.type === 'batch' && f.ts === ts));
    const batch = s.frames.find((f) => f.type === 'batch' && f.ts === ts);
    expect(batch && batch.type === 'batch' ? batch.updates.length : 0).toBe(PATHS);
    expect(batch && batch.type === 'batch' ? batch.updates[PATHS - 1] : null).toEqual([`/late/p${String(PATHS - 1).padStart(7, '0')}`, PATHS - 1 + 0.25]);
    expect(s.seen.filter((m) => m.type === 'paths').length).toBeGreaterThan(1);
    expect(s.closed()).toBe(0);
  });
});
