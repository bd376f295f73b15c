/**
 * Typed TypeScript client for a Tapedeck server: playback sessions over REST and their
 * WebSocket streams.
 *
 *   const td = new TapedeckClient('http://127.0.0.1:8080');
 *   const s = await td.createSession({ start: '-1h', speed: 10, filter: ['/fabric/**'] });
 *   const stream = td.stream(s.id);
 *   for await (const f of stream) {
 *     if (f.type === 'state') ...   // full state at the position (every covered path, null where none)
 *     if (f.type === 'batch') ...   // one recorded batch ([path, value] pairs)
 *   }
 *   stream.control({ pos: '-10', speed: 2 });   // ten batches back; 'pos-30s': 30 s back
 *   stream.playNext();                          // the next batch, then pause
 *   stream.burst(50);                           // the next 50 batches at once
 *
 * Frames come out in one shape whatever the wire format: `batches` frames are split into
 * `batch` frames, msgpack path ids are resolved to paths, and values are decoded by the
 * protocol's codecs (docs/values.md), exact in either format.
 *
 * Reconnect: with `reconnect` on (the default), a stream whose socket drops unexpectedly
 * reopens it (backoff 100 ms doubling to 5 s, at most `reconnectAttemptsMax` tries). The
 * server keeps the session's position while no client is attached (for its grace period),
 * so the new socket starts with a `state` frame at the same position and playback goes on
 * from there; a `reconnected` frame is yielded first so consumers can tell.
 *
 * Backpressure: frames wait in a queue of at most `queueFramesMax`; when it is full the
 * socket is paused, so a slow consumer slows the server down instead of filling memory.
 */
import WebSocket from 'ws';
import { FrameDecoder, type DecodedFrame } from '../../protocol/frames.js';
import type { FrameLayout } from '../../protocol/frame-columns.js';
import { CLOSE_CODES, closeIsFinal } from '../../protocol/close-codes.js';
import type { ControlsInput, ControlsView } from '../../protocol/controls.js';
import { PROTOCOL_LIMITS } from '../../protocol/limits.js';

export type { ControlsInput, ControlsView };

export interface SessionInfo {
  id: string;
  controls: ControlsView;
  filter: string[];
  stream: string;
  attached: boolean;
  createdAt: string;
}

export type CreateSessionOptions = ControlsInput & { filter?: string[] };

/** What a stream yields: the server's frames as protocol/frames.ts decodes them, and a note after a reconnect. */
export type StreamFrame = DecodedFrame | { type: 'reconnected'; attempt: number };

export class TapedeckClientError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'TapedeckClientError';
  }
}

export interface ClientOptions {
  /** Bearer token, when the server requires one. */
  token?: string;
}

export class TapedeckClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;

  constructor(baseUrl: string, opts: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = opts.token;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(this.baseUrl + path, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      // Not Tapedeck answering (an HTML error page from a proxy or another server).
      throw new TapedeckClientError(res.status, 'TPD_HTTP', `HTTP ${res.status}: the answer is not JSON (is this a Tapedeck server?)`);
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new TapedeckClientError(res.status, e?.code ?? 'TPD_HTTP', e?.message ?? `HTTP ${res.status}`);
    }
    return json as T;
  }

  createSession(opts: CreateSessionOptions = {}): Promise<SessionInfo> {
    return this.call('POST', '/api/v1/sessions', opts);
  }

  getSession(id: string): Promise<SessionInfo> {
    return this.call('GET', `/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  async listSessions(): Promise<SessionInfo[]> {
    return (await this.call<{ sessions: SessionInfo[] }>('GET', '/api/v1/sessions')).sessions;
  }

  setControls(id: string, set: ControlsInput): Promise<SessionInfo> {
    return this.call('PATCH', `/api/v1/sessions/${encodeURIComponent(id)}`, set);
  }

  async deleteSession(id: string): Promise<void> {
    await this.call('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  stream(id: string, opts: StreamOptions = {}): SessionStream {
    const url = `${this.baseUrl.replace(/^http/, 'ws')}/api/v1/sessions/${encodeURIComponent(id)}/stream`;
    return new SessionStream(url, opts, this.token);
  }
}

export interface StreamOptions {
  format?: 'json' | 'msgpack';
  /**
   * How the server lays out batch frames (docs/playback.md, "Layouts"): `columns` (the
   * default here) parses in about half the time of `pairs`; the frames this stream yields
   * are the same either way.
   */
  layout?: FrameLayout;
  reconnect?: boolean;
  reconnectAttemptsMax?: number;
  queueFramesMax?: number;
}

export class SessionStream implements AsyncIterable<StreamFrame> {
  private ws!: WebSocket;
  private readonly queue: StreamFrame[] = [];
  private waiter: (() => void) | undefined;
  private done = false;
  private failure: Error | undefined;
  private paused = false;
  private attempts = 0;
  private decoder = new FrameDecoder();
  private readonly format: 'json' | 'msgpack';
  private layout: FrameLayout;
  /** The layout was this client's choice, not the caller's: a server that refuses it is asked again in pairs. */
  private readonly layoutDefaulted: boolean;
  private readonly reconnect: boolean;
  private readonly attemptsMax: number;
  private readonly queueMax: number;
  private opened: Promise<void>;

  constructor(private readonly url: string, opts: StreamOptions, private readonly token: string | undefined) {
    this.format = opts.format ?? 'json';
    this.layout = opts.layout ?? 'columns';
    this.layoutDefaulted = opts.layout === undefined;
    this.reconnect = opts.reconnect ?? true;
    this.attemptsMax = opts.reconnectAttemptsMax ?? 10;
    this.queueMax = opts.queueFramesMax ?? 1024;
    this.opened = this.connect();
  }

  /** Resolves once the socket is open (the first frames may already be queued). */
  ready(): Promise<void> {
    return this.opened;
  }

  private connect(reconnectAttempt = 0): Promise<void> {
    // This client splits `batches` frames itself, so it takes them (fewer, larger frames).
    // Pairs are every server's default: not named, so a server from before layouts takes it.
    const ws = new WebSocket(`${this.url}?coalesce=true${this.layout === 'columns' ? '&layout=columns' : ''}${this.format === 'msgpack' ? '&format=msgpack' : ''}`, {
      headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
      // Every frame the server may send (one batch whole can pass ws's default of 100 MiB).
      maxPayload: PROTOCOL_LIMITS.streamFrameBytesMax,
    });
    this.ws = ws;
    this.decoder = new FrameDecoder(); // path ids are per connection
    ws.on('message', (data: Buffer, binary: boolean) => this.onMessage(data, binary));
    ws.on('close', (code) => {
      if (this.ws === ws) this.onClose(code); // not a socket given up for another
    });
    ws.on('error', () => undefined); // 'close' follows and decides
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        this.attempts = 0;
        // Synchronously: the server's first frames may be parsed right after 'open'.
        if (reconnectAttempt > 0) this.push({ type: 'reconnected', attempt: reconnectAttempt });
        resolve();
      });
      ws.once('unexpected-response', (req, res) => {
        if (res.statusCode === 400 && this.layout === 'columns' && this.layoutDefaulted) {
          // A server from before layouts refuses the parameter (400 before the upgrade): ask
          // again in pairs; the frames this stream yields are the same.
          this.layout = 'pairs';
          req.destroy();
          this.connect(reconnectAttempt).then(resolve, reject);
          return;
        }
        const err = new TapedeckClientError(res.statusCode ?? 0, res.statusCode === 404 ? 'TPD_SESSION_NOT_FOUND' : 'TPD_HTTP', `stream refused with HTTP ${res.statusCode}`);
        this.fail(err);
        reject(err);
      });
      ws.once('error', (err) => reject(err));
    });
  }

  private onMessage(data: Buffer, binary: boolean): void {
    let frames: StreamFrame[];
    try {
      frames = this.decoder.decode(data, binary);
    } catch (err) {
      // A frame or value the codec refuses: say so rather than drop the frame silently.
      frames = [{ type: 'error', code: 'TPD_BAD_FRAME', message: (err as Error).message }];
    }
    for (const x of frames) this.push(x);
  }

  private push(f: StreamFrame): void {
    this.queue.push(f);
    if (!this.paused && this.queue.length >= this.queueMax) {
      this.paused = true;
      this.ws.pause();
    }
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private onClose(code: number): void {
    if (this.done) return;
    // Closed by the server on purpose (session ended or deleted), replaced by a newer
    // connection, or gone: reconnecting would only find the same answer.
    if (!this.reconnect || closeIsFinal(code) || this.failure) {
      this.finish();
      return;
    }
    if (++this.attempts > this.attemptsMax) {
      this.fail(new Error(`stream closed (code ${code}) and ${this.attemptsMax} reconnects failed`));
      return;
    }
    const attempt = this.attempts;
    const delay = Math.min(5000, 100 * 2 ** (attempt - 1));
    setTimeout(() => {
      if (this.done) return;
      this.opened = this.connect(attempt).catch(() => undefined);
    }, delay);
  }

  private fail(err: Error): void {
    this.failure = err;
    this.finish();
  }

  private finish(): void {
    this.done = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Changes controls through the socket (the server answers with a `controls` frame, or an `error` naming the control). */
  control(set: ControlsInput): void {
    this.ws.send(JSON.stringify({ type: 'control', set }));
  }

  /**
   * Play-next: the next batch, then pause (`{ next: true }`). The batch comes as a `batch`
   * frame; the `controls` frame after it (state `pause`) marks the end; at the end of what
   * there is, an `info` frame `TPD_CLAMPED` comes first instead of the batch.
   */
  playNext(): void {
    this.control({ next: true });
  }

  /**
   * Burst: the next `n` batches (1 to burstBatchesMax) at once, unpaced, then on in the same
   * state (playing plays on from the last of them, paused stays paused). The `controls`
   * frame after the batches marks the end; TPD_CLAMPED when fewer than `n` were there.
   */
  burst(n: number): void {
    this.control({ burst: n });
  }

  close(): void {
    this.done = true;
    this.ws.close(CLOSE_CODES.normal);
    this.finish();
  }

  /** For tests and tools: drop the socket as a network failure would. */
  dropConnection(): void {
    this.ws.terminate();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamFrame> {
    for (;;) {
      const f = this.queue.shift();
      if (f) {
        if (this.paused && this.queue.length < this.queueMax / 2) {
          this.paused = false;
          this.ws.resume();
        }
        yield f;
        continue;
      }
      if (this.done) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}
