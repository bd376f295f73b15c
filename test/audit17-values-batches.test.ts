/**
 * Many batches played at once: `batches` frames (coalesced) built from the archive's column
 * blocks (numbers in one column, every other value beside it), in JSON and msgpack, pairs
 * and columns, with and without a filter, through the raw socket and the SDK. Numbers and
 * non-numbers are mixed at random places in each batch (seeded, AUDIT17_BATCHES_SEED
 * replays), so a value put at the wrong update, batch or path, or a NaN payload quieted,
 * shows. Every batch must come back as pushed, in order, NaN bits too over msgpack.
 */
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { TapedeckClient } from '../clients/client/index.js';
import { FrameDecoder } from '../protocol/frames.js';
import { formatTs } from '../protocol/time.js';
import type { Update, Value } from '../protocol/value.js';
import { FRAGILE_NANS, numberBits } from './helpers/nan.js';
import { recordingServerEach, type RecordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { msgpackBatch, openIngestWs, sendIngestWs } from './helpers/value-outputs.js';
import { valueDiff } from './helpers/values.js';
import { rng } from './helpers/workload.js';

const seed = scheduleSeed('AUDIT17_BATCHES_SEED', 'audit17-values-batches');
const T0 = 1_763_000_000_000_000;
const BATCHES = 400;

let srv: RecordingServer;
recordingServerEach((s) => (srv = s));

function makeBatches(): Array<{ ts: number; updates: Update[] }> {
  const r = rng(seed);
  const others: Value[] = [null, true, 'x', '', '\ud800', 2n ** 64n, Uint8Array.of(1, 2), [1, NaN], { a: -0 }, 'é'.repeat(70)];
  const out: Array<{ ts: number; updates: Update[] }> = [];
  for (let k = 0; k < BATCHES; k++) {
    const n = 1 + Math.floor(r() * 12);
    const updates: Update[] = [];
    const used = new Set<number>();
    for (let i = 0; i < n; i++) {
      let p = Math.floor(r() * 40);
      while (used.has(p)) p = (p + 1) % 40;
      used.add(p);
      const x = r();
      const v: Value = x < 0.45 ? Math.floor(r() * 1000) - 500 : x < 0.55 ? (r() - 0.5) * 1e6 : x < 0.65 ? (FRAGILE_NANS[Math.floor(r() * FRAGILE_NANS.length)] as number) : x < 0.7 ? -0 : (others[Math.floor(r() * others.length)] as Value);
      updates.push([`/b/${p % 2 === 0 ? 'even' : 'odd'}/${p}`, v]);
    }
    out.push({ ts: T0 + k * 1000, updates });
  }
  return out;
}

function sameBatches(name: string, want: Array<{ ts: number; updates: Update[] }>, got: Array<{ ts: number; updates: Array<[string, Value]> }>, bits: boolean): void {
  expect(got.map((b) => b.ts), name).toEqual(want.map((b) => b.ts));
  want.forEach((b, k) => {
    const g = got[k] as { updates: Array<[string, Value]> };
    expect(g.updates.map((u) => u[0]), `${name} batch ${k} paths`).toEqual(b.updates.map((u) => u[0]));
    b.updates.forEach(([p, v], i) => {
      const gv = g.updates[i]?.[1];
      const d = valueDiff(v, gv) ?? (bits && typeof v === 'number' && numberBits(v) !== numberBits(gv) ? `bits ${numberBits(v)} became ${numberBits(gv)}` : undefined);
      if (d) throw new Error(`${name} batch ${k} ${p}: ${d}`);
    });
  });
}

async function rawPlay(filter: string, format: 'json' | 'msgpack', layout: 'pairs' | 'columns', n: number): Promise<Array<{ ts: number; updates: Array<[string, Value]> }>> {
  const td = new TapedeckClient(srv.url);
  const s = await td.createSession({ start: formatTs(T0 - 1), end: 'unbounded', speed: 'unlimited', filter: [filter] });
  const ws = new WebSocket(`${srv.url.replace(/^http/, 'ws')}/api/v1/sessions/${s.id}/stream?coalesce=true&layout=${layout}${format === 'msgpack' ? '&format=msgpack' : ''}`);
  const dec = new FrameDecoder();
  const got: Array<{ ts: number; updates: Array<[string, Value]> }> = [];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${got.length} of ${n} batches`)), 30_000);
    ws.on('message', (d: Buffer, binary: boolean) => {
      for (const f of dec.decode(d, binary)) {
        if (f.type === 'batch') got.push({ ts: f.ts, updates: f.updates });
        if (f.type === 'error') reject(new Error(`${f.code}: ${f.message}`));
      }
      if (got.length >= n) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  ws.close();
  await td.deleteSession(s.id).catch(() => undefined);
  return got;
}

describe('audit17: batches frames from column blocks', () => {
  it('every batch as pushed, in order, in every format and layout, filtered or not', async () => {
    const batches = makeBatches();
    const ws = await openIngestWs(srv.url);
    // One message a batch; the archive cuts blocks of its own, so views start mid-block.
    for (let k = 0; k < batches.length; k++) {
      const b = batches[k] as { ts: number; updates: Update[] };
      expect(await sendIngestWs(ws, msgpackBatch(b.ts, b.updates))).toMatchObject({ rejected_lines: 0 });
    }
    ws.close();
    const odd = batches.map((b) => ({ ts: b.ts, updates: b.updates.filter((u) => u[0].startsWith('/b/odd/')) })).filter((b) => b.updates.length > 0);
    for (const format of ['json', 'msgpack'] as const) {
      for (const layout of ['pairs', 'columns'] as const) {
        sameBatches(`${format} ${layout} all`, batches, await rawPlay('/b/**', format, layout, batches.length), format === 'msgpack');
        sameBatches(`${format} ${layout} odd`, odd, await rawPlay('/b/odd/**', format, layout, odd.length), format === 'msgpack');
      }
    }
  }, 80_000);
});
