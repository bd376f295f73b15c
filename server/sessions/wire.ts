/**
 * What one session writes to its client: every frame in the client's format (JSON text or
 * msgpack, protocol/frames.ts and protocol/msgpack-frames.ts), and on msgpack streams the
 * `paths` frames that announce each path id once per connection, before its first use.
 * The session decides what to send and when; this only encodes and counts.
 *
 * The session tells a msgpack client of a frame's paths first (tellState, tellBatches,
 * tellColumns), in `paths` frames of about frameBytesMax, a frame a turn, and sends the
 * frame itself in a later turn when they left the client more than wsBufferHighBytes to
 * read: sent behind them, the frame counted against wsSessionOverflowBytesMax and the stream
 * was closed (4008) at every attach to a session of 300 000 paths.
 */
import { encodeJsonColumnsRawFrame, encodeJsonColumnsViewFrame, encodeMsgpackColumnsRawFrame, encodeMsgpackColumnsViewFrame, type FrameLayout } from '../../protocol/frame-columns.js';
import { encodeJsonColumnFrameBytes, encodeJsonFrame, encodeJsonRawFrameBytes, type ValuelessFrame } from '../../protocol/frames.js';
import { JsonBytesWriter } from '../../protocol/value-json-bytes.js';
import { encodeBatchFrame, encodeColumnFrame, type ColumnBatchesView } from '../../protocol/msgpack-batch-frame.js';
import { MsgpackWriter, encodeMsgpackFrame, encodeStateFrame } from '../../protocol/msgpack-frames.js';
import { valuePair, type Value } from '../../protocol/value.js';
import type { RawBatch } from '../../storage/cursor.js';
import type { FetchWait } from '../../storage/index.js';
import { columnBatchBytes, pathEntryBytes, rawBatchBytes } from './frame-bytes.js';
import type { SessionLimits } from './ports.js';

export type FrameFormat = 'json' | 'msgpack';

/** What a session sends through: a WebSocket in production, anything in tests. */
export interface SessionSink {
  readonly format: FrameFormat;
  /** The client takes `batches` frames (several batches in one frame; `?coalesce=true`). */
  readonly coalesce: boolean;
  /** How batch frames hold their updates: `[path, value]` pairs, or a column of paths (ids) and one of values (`?layout=columns`). Absent: pairs. */
  readonly layout?: FrameLayout;
  /** A frame: JSON streams get text (a string, or its UTF-8 bytes for batch frames), msgpack streams bytes. */
  send(data: string | Buffer): void;
  /** Bytes sent that the client is not known to have read (a WebSocket: past its last answered ping). */
  bufferedBytes(): number;
  /** Resolves once bufferedBytes() is back under the session's high mark (or the sink closed). */
  drained(): Promise<void>;
  close(code: number, reason: string): void;
}

/**
 * The notice of a read waiting for a remote archive file (get hook): buffering, and when
 * the file arrived. A failed fetch reaches the client as an error instead.
 */
export function fetchWaitFrame(e: Parameters<FetchWait>[0]): ValuelessFrame | undefined {
  if (e.phase === 'start') return { type: 'info', code: 'TPD_BUFFERING', message: `buffering: fetching archive file ${e.name} from cold storage` };
  if (e.phase === 'done') return { type: 'info', code: 'TPD_BUFFERED', message: `archive file ${e.name} fetched; playback goes on` };
  return undefined;
}

export type IdMatch = ((id: number) => boolean) | undefined;

/** A frame's paths told: none were new, `sent` (the frame may follow), or `wait` (more to tell, or the client has more than the high mark to read). */
export type Told = 'none' | 'sent' | 'wait';

/** Path ids a `paths` frame gathers while its bytes are under a budget. */
class FreshPaths {
  readonly pairs: Array<[number, string]> = [];
  bytes = 0;
  constructor(readonly bytesMax: number) {}
  get full(): boolean {
    return this.bytes >= this.bytesMax;
  }
  add(id: number, path: string): void {
    this.pairs.push([id, path]);
    this.bytes += pathEntryBytes(path);
  }
}

/** The encoders' output (a fresh copy each) as a Buffer, without copying again. */
function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class SessionWire {
  private current: SessionSink | undefined;
  /** Path ids this connection has been told of (msgpack), 1 per id. */
  private sentIds = new Uint8Array(0);
  /** Ids set in sentIds: once it is the path table's length, no frame has a path to tell (the scan of its ids is skipped). */
  private toldCount = 0;
  private readonly mp = new MsgpackWriter();
  /** Made at the first JSON batch frame: most sessions' streams are one format. */
  private json: JsonBytesWriter | undefined;
  /** tellState: every id below this was told of on this connection, or is not covered. */
  private stateToldTo = 0;

  /**
   * `paths`: the archive's path table (read at each use: it grows while recording).
   * `framesSent`: counts every frame and its bytes.
   */
  constructor(private readonly paths: () => readonly string[], private readonly framesSent: (n: number, bytes: number) => void, private readonly limits: Pick<SessionLimits, 'frameBytesMax' | 'wsBufferHighBytes'>) {}

  get sink(): SessionSink | undefined {
    return this.current;
  }

  /** A new connection (or none): it has been told of no path id yet. */
  connect(sink: SessionSink | undefined): void {
    this.current = sink;
    this.sentIds = new Uint8Array(0);
    this.toldCount = 0;
    this.stateToldTo = 0;
  }

  /** Control-plane frames (controls, end, error, info, coverage); state and batches below. */
  frame(frame: ValuelessFrame): void {
    if (!this.current) return;
    this.raw(this.current.format === 'json' ? encodeJsonFrame(frame) : bufferOf(encodeMsgpackFrame(this.mp, frame)));
  }

  /** The state at `ts`: every path `matches` takes, null where `byId` has no value. */
  state(ts: number | null, byId: ReadonlyMap<number, Value>, matches: (id: number) => boolean): void {
    const paths = this.paths();
    if (this.current?.format === 'msgpack') {
      const values: Array<[number, Value]> = [];
      for (let id = 0; id < paths.length; id++) if (matches(id)) values.push(valuePair(id, byId.has(id) ? (byId.get(id) as Value) : null)); // not [id, v]: two numbers make an array of doubles, which changes a NaN
      const ids = values.map((p) => p[0]);
      this.announce(ids, 0, ids.length, undefined);
      this.raw(bufferOf(encodeStateFrame(this.mp, ts, values)));
      return;
    }
    const values: Record<string, Value> = {};
    for (let id = 0; id < paths.length; id++) {
      if (matches(id)) values[paths[id] as string] = byId.has(id) ? (byId.get(id) as Value) : null;
    }
    this.raw(encodeJsonFrame({ type: 'state', ts, values }));
  }

  /** One `batch` frame, or a `batches` frame for several; updates `match` rejects left out. */
  batches(out: readonly RawBatch[], match: IdMatch): void {
    const columns = this.current?.layout === 'columns';
    if (this.current?.format === 'msgpack') {
      for (const b of out) this.announce(b.ids, b.from, b.to, match);
      this.raw(bufferOf(columns ? encodeMsgpackColumnsRawFrame(this.mp, out, match) : encodeBatchFrame(this.mp, out, match)));
    } else {
      // Bytes rather than a string: the socket would encode the string to UTF-8 again.
      const w = (this.json ??= new JsonBytesWriter());
      this.raw(bufferOf(columns ? encodeJsonColumnsRawFrame(w, out, this.paths(), match) : encodeJsonRawFrameBytes(w, out, this.paths(), match)));
    }
  }

  /** batches() of batches [k0, k1) of a block held as columns (filtered by the cursor already). */
  columnBatches(v: ColumnBatchesView, k0: number, k1: number): void {
    const columns = this.current?.layout === 'columns';
    if (this.current?.format === 'msgpack') {
      this.announce(v.ids, v.starts[k0] as number, v.starts[k1] as number, undefined);
      this.raw(bufferOf(columns ? encodeMsgpackColumnsViewFrame(this.mp, v, k0, k1) : encodeColumnFrame(this.mp, v, k0, k1)));
    } else {
      const w = (this.json ??= new JsonBytesWriter());
      this.raw(bufferOf(columns ? encodeJsonColumnsViewFrame(w, v, k0, k1, this.paths()) : encodeJsonColumnFrameBytes(w, v, k0, k1, this.paths())));
    }
  }

  /** What batches() would add to a frame for `b`, at least (./frame-bytes.ts). */
  batchBytes(b: RawBatch, match: IdMatch): number {
    return rawBatchBytes(b, this.current?.format ?? 'json', this.paths(), match);
  }

  /** What columnBatches() would add to a frame for batch `k` of `v`, at least. */
  columnBatchBytes(v: ColumnBatchesView, k: number): number {
    return columnBatchBytes(v, k, this.current?.format ?? 'json', this.paths());
  }

  /** Tells a msgpack client of the paths a state() frame would name (see the top of this file). */
  tellState(matches: (id: number) => boolean): Told {
    if (this.current?.format !== 'msgpack') return 'none';
    const paths = this.paths();
    const fresh = new FreshPaths(this.limits.frameBytesMax);
    let id = this.stateToldTo;
    for (; id < paths.length && !fresh.full; id++) if (matches(id) && this.isNew(id, paths.length)) fresh.add(id, paths[id] as string);
    this.stateToldTo = id;
    return this.tell(fresh, id < paths.length);
  }

  /** Tells a msgpack client of the paths a batches() frame of `out` would name. */
  tellBatches(out: readonly RawBatch[], match: IdMatch): Told {
    if (this.current?.format !== 'msgpack') return 'none';
    const fresh = new FreshPaths(this.limits.frameBytesMax);
    let more = false;
    for (const b of out) if ((more = this.gather(fresh, b.ids, b.from, b.to, match))) break;
    return this.tell(fresh, more);
  }

  /** Tells a msgpack client of the paths a columnBatches() frame of [k0, k1) would name. */
  tellColumns(v: ColumnBatchesView, k0: number, k1: number): Told {
    if (this.current?.format !== 'msgpack') return 'none';
    const fresh = new FreshPaths(this.limits.frameBytesMax);
    return this.tell(fresh, this.gather(fresh, v.ids, v.starts[k0] as number, v.starts[k1] as number, undefined));
  }

  /** Sends what `fresh` gathered; `wait` when more is left to tell or the client has more than the high mark to read. */
  private tell(fresh: FreshPaths, more: boolean): Told {
    if (fresh.pairs.length === 0) return more ? 'wait' : 'none';
    this.raw(bufferOf(encodeMsgpackFrame(this.mp, { type: 'paths', paths: fresh.pairs })));
    return more || (this.current?.bufferedBytes() ?? 0) > this.limits.wsBufferHighBytes ? 'wait' : 'sent';
  }

  /** This client has not been told of `id`: it is now (the caller sends it). */
  private isNew(id: number, pathsLength: number): boolean {
    if (id >= this.sentIds.length) {
      const next = new Uint8Array(Math.max(id + 1, pathsLength, this.sentIds.length * 2));
      next.set(this.sentIds);
      this.sentIds = next;
    }
    if (this.sentIds[id] === 1) return false;
    this.sentIds[id] = 1;
    this.toldCount++;
    return true;
  }

  /** Adds the untold ids of list[from, to) to `fresh` until it is full; true when it filled before the end. */
  private gather(fresh: FreshPaths, list: ArrayLike<number>, from: number, to: number, match: IdMatch): boolean {
    const paths = this.paths();
    // Every path of the table told (a frame names only paths of the table): nothing is new.
    if (this.toldCount >= paths.length) return false;
    for (let i = from; i < to; i++) {
      if (fresh.full) return true;
      const id = list[i] as number;
      if (match && !match(id)) continue;
      if (this.isNew(id, paths.length)) fresh.add(id, paths[id] as string);
    }
    return false;
  }

  /** Sends a `paths` frame for ids of list[from, to) this client has not seen yet, however many. */
  private announce(list: ArrayLike<number>, from: number, to: number, match: IdMatch): void {
    const fresh = new FreshPaths(Infinity);
    this.gather(fresh, list, from, to, match);
    if (fresh.pairs.length > 0) this.raw(bufferOf(encodeMsgpackFrame(this.mp, { type: 'paths', paths: fresh.pairs })));
  }

  private raw(data: string | Buffer): void {
    const sink = this.current;
    if (!sink) return;
    sink.send(data);
    this.framesSent(1, typeof data === 'string' ? Buffer.byteLength(data) : data.length);
  }
}
