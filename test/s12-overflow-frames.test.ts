/**
 * Session streams of large values against a real server on a free port and real WebSocket
 * clients that read every frame as it comes. Frames of megabytes back to back (a batch of a
 * 6 MiB string, then the state of several such strings after a seek; two batches of 6 MiB
 * at unlimited speed) must reach a client that reads promptly, however many, and never close
 * its stream with 4008 `unresponsive` (wsSessionOverflowBytesMax is for clients that stop
 * reading: test/hostile-streams.test.ts, test/audit11-session-backlog.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FrameDecoder, type DecodedFrame } from '../protocol/frames.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';
import type { Batch } from '../protocol/value.js';
import { api, startServer, type TestServer } from './helpers/server.js';

const MIB = 1024 * 1024;
const BIG = 6 * MIB;
const T0 = 1_700_000_000_000_000;
const S = 1_000_000;
const FORMATS = ['json', 'msgpack'] as const;

let server: TestServer | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await server?.close();
  server = undefined;
});

/** A string of `n` characters that names batch `k` (so a frame shows which value it carries). */
function big(k: number, n = BIG): string {
  return String.fromCharCode(97 + k).repeat(n);
}

/** Batches 0..n-1 one second apart, each one `BIG` string under its own path /big/<k>. */
function bigBatches(n: number): Batch[] {
  return Array.from({ length: n }, (_, k) => ({ ts: T0 + k * S, updates: [[`/big/${k}`, big(k)]] }));
}

interface Stream {
  frames: DecodedFrame[];
  closed: () => { code: number; reason: string } | undefined;
  send: (set: Record<string, unknown>) => void;
  until: (what: string, pred: () => boolean) => Promise<void>;
}

/** A stream that decodes every message as it arrives (a client reading at full speed). */
function open(base: string, id: string, format: 'json' | 'msgpack'): Stream {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream?format=${format}`, { maxPayload: PROTOCOL_LIMITS.streamFrameBytesMax });
  sockets.push(ws);
  const dec = new FrameDecoder();
  const frames: DecodedFrame[] = [];
  let closed: { code: number; reason: string } | undefined;
  let wake = (): void => undefined;
  ws.on('message', (d: Buffer, binary: boolean) => {
    frames.push(...dec.decode(d, binary));
    wake();
  });
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() };
    wake();
  });
  const until = async (what: string, pred: () => boolean): Promise<void> => {
    const deadline = Date.now() + 45_000;
    while (!pred()) {
      if (closed) throw new Error(`waiting for ${what}: stream closed ${closed.code} ${closed.reason}; frames ${frames.map((f) => f.type).join(',')}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames ${frames.map((f) => f.type).join(',')}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  };
  const send = (set: Record<string, unknown>): void => {
    const go = (): void => ws.send(JSON.stringify({ type: 'control', set }));
    if (ws.readyState === ws.OPEN) go();
    else ws.once('open', go);
  };
  return { frames, closed: () => closed, send, until };
}

const count = (s: Stream, type: string): number => s.frames.filter((f) => f.type === type).length;

/** The values of a state frame, by path, as lengths and first characters (the strings are megabytes). */
function stateShape(f: DecodedFrame | undefined): Record<string, string> {
  if (!f || f.type !== 'state') return {};
  return Object.fromEntries(Object.entries(f.values).map(([p, v]) => [p, typeof v === 'string' ? `${v[0]}x${v.length}` : String(v)]));
}

describe('frames of megabytes to a client that reads promptly', () => {
  for (const format of FORMATS) {
    it(`${format}: play, then seeks back and forth: every state frame arrives, no 4008`, { timeout: 180_000 }, async () => {
      server = await startServer(bigBatches(4), {}, { imageFrequencyBytes: 0 });
      const created = await api(server.url, 'POST', '/api/v1/sessions', { state: 'pause', pos: 'beginning' });
      const s = open(server.url, created.body.id as string, format);
      await s.until('the first state', () => count(s, 'controls') >= 1);
      // Play to the end at unlimited speed: four batch frames of 6 MiB.
      s.send({ speed: 'unlimited', state: 'play' });
      await s.until('the four batches', () => count(s, 'batch') >= 4);
      // Seeks back and forth, each sent as soon as the previous one is answered (its controls
      // frame), before the client has read the state frame of megabytes it brings.
      const seeks = [T0 + 3 * S, T0 + 1 * S, T0 + 3 * S, T0 + 2 * S, T0 + 3 * S, T0];
      for (const [i, us] of seeks.entries()) {
        const answered = count(s, 'controls');
        s.send({ pos: new Date(us / 1000).toISOString() });
        await s.until(`seek ${i} answered`, () => s.frames.filter((f) => f.type === 'controls').length > answered);
      }
      const last = seeks[seeks.length - 1] as number;
      await s.until('the state at the last seek', () => s.frames.some((f) => f.type === 'state' && f.ts === last));
      const states = s.frames.filter((f) => f.type === 'state');
      // One state at the attach, at least one after the seeks (seeks that came together share one).
      expect(states.length).toBeGreaterThanOrEqual(2);
      for (const f of states) {
        if (f.type !== 'state' || f.ts === null) continue;
        const k = (f.ts - T0) / S;
        const want: Record<string, string> = {};
        for (let j = 0; j < 4; j++) want[`/big/${j}`] = j <= k ? `${String.fromCharCode(97 + j)}x${BIG}` : 'null';
        expect(stateShape(f)).toEqual(want);
      }
      // The stream stays open a while longer (a late count against the overflow bound would close it).
      await new Promise((r) => setTimeout(r, 500));
      expect(s.closed()).toBeUndefined();
    });

    it(`${format}: two batches of 6 MiB back to back at unlimited speed, then a seek: all arrive, no 4008`, { timeout: 180_000 }, async () => {
      server = await startServer(bigBatches(2), {}, { imageFrequencyBytes: 0 });
      const created = await api(server.url, 'POST', '/api/v1/sessions', { state: 'play', speed: 'unlimited', pos: 'beginning' });
      const s = open(server.url, created.body.id as string, format);
      await s.until('the two batches', () => count(s, 'batch') >= 2);
      const batches = s.frames.filter((f) => f.type === 'batch');
      expect(batches.map((f) => (f.type === 'batch' ? f.updates.map(([p, v]) => [p, typeof v === 'string' ? v.length : v]) : []))).toEqual([
        [['/big/0', BIG]],
        [['/big/1', BIG]],
      ]);
      s.send({ pos: new Date(T0 / 1000).toISOString(), state: 'play' });
      // The state at T0 holds batch 0: batch 1 follows it.
      await s.until('batch 1 again', () => count(s, 'batch') >= 3);
      await new Promise((r) => setTimeout(r, 500));
      expect(s.closed()).toBeUndefined();
    });
  }
});
