/**
 * A session WebSocket for tests that check what follows a control, frame by frame: every
 * server frame decoded by the protocol's one client decoder (protocol/frames.ts
 * FrameDecoder: msgpack ids resolved, JSON values revived, `batches` split into `batch`),
 * kept in arrival order with the raw frame type it came in, so a test can wait for a frame
 * and then read exactly what came before it.
 */
import WebSocket from 'ws';
import { FrameDecoder, reviveValue, type DecodedFrame } from '../../protocol/frames.js';
import type { Batch } from '../../protocol/value.js';

export interface Seen {
  frame: DecodedFrame;
  /** The type of the WebSocket message it came in (`batches` for a batch split out of one). */
  wireType: string;
}

export class FramesWs {
  readonly seen: Seen[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder();
  private waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      const frames = this.decoder.decode(data, binary);
      const wireType = frames.length > 1 ? 'batches' : (frames[0]?.type ?? 'paths');
      for (const frame of frames) this.seen.push({ frame, wireType });
      this.notify();
    });
    ws.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  static async open(base: string, id: string, opts: { format?: 'json' | 'msgpack'; coalesce?: boolean } = {}): Promise<FramesWs> {
    const q = [opts.format === 'msgpack' ? 'format=msgpack' : '', opts.coalesce ? 'coalesce=true' : ''].filter((x) => x !== '').join('&');
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v1/sessions/${id}/stream${q ? `?${q}` : ''}`);
    const r = new FramesWs(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return r;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Index of the first frame at or after `from` matching `pred`, waiting for it. */
  async waitFor(pred: (f: DecodedFrame) => boolean, from = 0, timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.seen.length; i++) if (pred((this.seen[i] as Seen).frame)) return i;
      if (this.closed) throw new Error(`socket closed while waiting for a frame; have: ${this.types(from)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; have: ${this.types(from)}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  /** The frame types from `from` on, for failure messages. */
  types(from = 0, to = this.seen.length): string {
    return this.seen.slice(from, to).map((s) => (s.frame.type === 'info' || s.frame.type === 'error' ? `${s.frame.type}:${s.frame.code}` : s.frame.type)).join(',');
  }

  /** The frames in [from, to). */
  frames(from: number, to = this.seen.length): DecodedFrame[] {
    return this.seen.slice(from, to).map((s) => s.frame);
  }

  control(set: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ type: 'control', set }));
  }

  close(): void {
    this.ws.close();
  }
}

/** The batches among `frames`, as recorded batches. */
export function batchesIn(frames: readonly DecodedFrame[]): Batch[] {
  const out: Batch[] = [];
  for (const f of frames) if (f.type === 'batch') out.push({ ts: f.ts, updates: f.updates });
  return out;
}

/** Every recorded batch, as GET /api/v1/history answers it (NDJSON, values in the JSON codec's form). */
export async function historyBatches(base: string, query = ''): Promise<Batch[]> {
  const res = await fetch(`${base}/api/v1/history?from=0&to=${Number.MAX_SAFE_INTEGER}&format=ndjson${query}`);
  if (!res.ok) throw new Error(`history answered ${res.status}: ${await res.text()}`);
  const text = await res.text();
  return text.split('\n').filter((l) => l !== '').map((l) => {
    const row = JSON.parse(l) as { ts: number; updates: Record<string, unknown> };
    return { ts: row.ts, updates: Object.entries(row.updates).map(([p, v]) => [p, reviveValue(v, p)]) };
  });
}
