/**
 * The wire of a shard's batches to a merging node (GET /api/v1/shard/batches): each batch
 * exactly as recorded (a path updated twice in a batch kept twice, every value kind exact:
 * protocol/value-msgpack.ts), as a 4-byte big-endian length and the msgpack of
 * `[ts, [id, ...], [value, ...], [id, path, id, path, ...]]`: ids are the shard archive's
 * path ids, and the last array announces the ids this stream has not used before (each
 * path travels once per stream, not once per update). Records are gathered into chunks of
 * about clusterShardChunkBytesTarget bytes; a consumer that reads slowly holds the cursor
 * back.
 *
 * Both ends skip the generic value tree for the record's frame: the encoder writes ids and
 * values straight from the cursor's batch, the decoder reads ids into a Uint32Array and the
 * values as one array, from bytes already received, without a promise per batch
 * (ShardBatchDecoder); only the values themselves go through the value codec.
 */
import { TapedeckError } from '../../protocol/errors.js';
import type { Value } from '../../protocol/value.js';
import { MsgpackReader, MsgpackWriter } from '../../protocol/value-msgpack.js';
import type { RawBatch } from '../../storage/cursor.js';
import type { Cursor } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';

export const SHARD_BATCHES_MEDIA_TYPE = 'application/vnd.tapedeck.batches+msgpack';

const LENGTH_BYTES = 4;
/** msgpack fixarray of 4: the record's frame. */
const RECORD_HEAD = 0x94;

/** One batch as received: ids in the receiver's path table (idOf), values as recorded; a whole RawBatch view. */
export interface ShardBatch extends RawBatch {
  ts: number;
  ids: Uint32Array;
  values: Value[];
}

/** Appends length-prefixed records to chunks of about `targetBytes`. */
class ChunkBuilder {
  private buf: Buffer;
  private used = 0;

  constructor(private readonly targetBytes: number) {
    this.buf = Buffer.allocUnsafe(targetBytes * 2);
  }

  get full(): boolean {
    return this.used >= this.targetBytes;
  }

  get empty(): boolean {
    return this.used === 0;
  }

  record(body: Uint8Array): void {
    const need = this.used + LENGTH_BYTES + body.length;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
    this.buf.writeUInt32BE(body.length, this.used);
    this.buf.set(body, this.used + LENGTH_BYTES);
    this.used = need;
  }

  /** The chunk so far; the builder starts a new one (the chunk given away is not written again). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(Math.max(this.targetBytes * 2, 1024));
    this.used = 0;
    return out;
  }
}

/** Writes one batch's record (without its length) into `w`, announcing in `sent` the ids it names first. */
function writeRecord(w: MsgpackWriter, c: Cursor, b: RawBatch, paths: readonly string[], sent: { ids: Uint8Array }, fresh: number[]): void {
  let n = b.to - b.from;
  if (b.filtered) {
    n = 0;
    for (let i = b.from; i < b.to; i++) if (c.matches(b.ids[i] as number)) n++;
  }
  fresh.length = 0;
  w.reset();
  w.arrayHeader(4);
  w.num(b.ts);
  w.arrayHeader(n);
  for (let i = b.from; i < b.to; i++) {
    const id = b.ids[i] as number;
    if (b.filtered && !c.matches(id)) continue;
    w.num(id);
    if (id >= sent.ids.length) {
      const next = new Uint8Array(Math.max(id + 1, paths.length, sent.ids.length * 2));
      next.set(sent.ids);
      sent.ids = next;
    }
    if (sent.ids[id] === 0) {
      sent.ids[id] = 1;
      fresh.push(id);
    }
  }
  w.arrayHeader(n);
  for (let i = b.from; i < b.to; i++) if (!b.filtered || c.matches(b.ids[i] as number)) w.value(b.values[i] as Value);
  w.arrayHeader(fresh.length * 2);
  for (const id of fresh) {
    w.num(id);
    w.str(paths[id] as string);
  }
}

/** The cursor's batches up to `lastUs`, encoded, in chunks; `paths` is the archive's path table. */
export async function* encodeShardBatches(c: Cursor, paths: () => readonly string[], lastUs: number): AsyncGenerator<Buffer> {
  const w = new MsgpackWriter();
  const sent = { ids: new Uint8Array(0) };
  const fresh: number[] = [];
  const chunk = new ChunkBuilder(SERVER_LIMITS.clusterShardChunkBytesTarget);
  for (let b = await c.nextRaw(); b && b.ts <= lastUs; b = await c.nextRaw()) {
    writeRecord(w, c, b, paths(), sent, fresh);
    chunk.record(w.written());
    if (chunk.full) yield chunk.take();
  }
  if (!chunk.empty) yield chunk.take();
}

function fault(why: string): TapedeckError {
  return new TapedeckError('TPD_INTERNAL', `a shard sent malformed batches: ${why}`);
}

/** An array header at `at` of `b`: [count, where its items start]. */
function arrayAt(b: Buffer, at: number, end: number, what: string): [number, number] {
  const c = at < end ? (b[at] as number) : -1;
  if (c >= 0x90 && c <= 0x9f) return [c & 0x0f, at + 1];
  if (c === 0xdc && at + 3 <= end) return [b.readUInt16BE(at + 1), at + 3];
  if (c === 0xdd && at + 5 <= end) return [b.readUInt32BE(at + 1), at + 5];
  throw fault(`${what} is not an array`);
}

/**
 * Records of that wire from chunks as they come: push() the bytes received, then next()
 * returns each whole batch, undefined when it needs more bytes. Chunks wait in a list until
 * a whole record is there, then are joined once (a large record in small chunks costs its
 * size, not its size times its chunks). A record past `maxBytes`, malformed, or whose time
 * is not an exact time after the stream's last one (and at or after `fromUs`, where the
 * stream was asked to start) is a shard fault (TPD_INTERNAL): a batch is never played out
 * of order nor twice. Pure: no I/O.
 */
export class ShardBatchDecoder {
  /** The shard's path id → the receiver's. */
  private readonly local: number[] = [];
  private buf: Buffer = Buffer.alloc(0);
  /** `buf` as a plain Uint8Array: the reader's slice() of it copies (a bin value owns its bytes, not the chunk's). */
  private bytes: Uint8Array = new Uint8Array(0);
  private at = 0;
  /** Chunks received after `buf`, not yet joined to it, and their bytes. */
  private readonly waiting: Buffer[] = [];
  private waitingBytes = 0;
  /** The last record's time: the next must be later. */
  private lastTs: number;

  /** `idOf`: the receiver's id of a path, called once per path per stream. */
  constructor(private readonly maxBytes: number, private readonly idOf: (path: string) => number, fromUs = 0) {
    this.lastTs = fromUs - 1;
  }

  push(chunk: Buffer): void {
    this.waiting.push(chunk);
    this.waitingBytes += chunk.length;
  }

  /** Whether `need` bytes from `at` are there, joining the waiting chunks once they make them. */
  private have(need: number): boolean {
    const held = this.buf.length - this.at;
    if (held >= need) return true;
    if (held + this.waitingBytes < need) return false;
    this.buf = held === 0 && this.waiting.length === 1 ? (this.waiting[0] as Buffer) : Buffer.concat([this.buf.subarray(this.at), ...this.waiting]);
    this.bytes = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.at = 0;
    this.waiting.length = 0;
    this.waitingBytes = 0;
    return true;
  }

  /** The next whole batch received, or undefined until more bytes come. */
  next(): ShardBatch | undefined {
    if (!this.have(LENGTH_BYTES)) return undefined;
    const n = this.buf.readUInt32BE(this.at);
    if (n > this.maxBytes) throw fault(`a record of ${n} bytes (limit ${this.maxBytes})`);
    if (!this.have(LENGTH_BYTES + n)) return undefined;
    const b = this.buf;
    const from = this.at + LENGTH_BYTES;
    this.at = from + n;
    try {
      return this.record(b, from, from + n);
    } catch (err) {
      if (err instanceof TapedeckError && err.code === 'TPD_INTERNAL') throw err;
      throw fault((err as Error).message);
    }
  }

  /** The body ended: throws if it ended inside a record. */
  end(): void {
    if (this.at < this.buf.length || this.waitingBytes > 0) throw fault('the body ends inside a record');
  }

  private record(b: Buffer, from: number, end: number): ShardBatch {
    const shape = 'a record is not [ts, ids, values, announced]';
    if (b[from] !== RECORD_HEAD) throw fault(shape);
    const r = new MsgpackReader(this.bytes, from + 1, end);
    const ts = r.value();
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts)) throw fault(`a batch time that is not a time: ${String(ts).slice(0, 40)}`);
    if (ts <= this.lastTs) throw fault(`a batch at ${ts}, not after ${this.lastTs} (times increase from where the stream starts)`);
    this.lastTs = ts;
    const [n, idsAt] = arrayAt(b, r.pos, end, 'ids');
    if (n > end - idsAt) throw fault(shape);
    const ids = new Uint32Array(n);
    let at = idsAt;
    for (let i = 0; i < n; i++) {
      const c = b[at] as number;
      if (c < 0x80) {
        ids[i] = c;
        at += 1;
      } else if (c === 0xcc && at + 2 <= end) {
        ids[i] = b[at + 1] as number;
        at += 2;
      } else if (c === 0xcd && at + 3 <= end) {
        ids[i] = b.readUInt16BE(at + 1);
        at += 3;
      } else if (c === 0xce && at + 5 <= end) {
        ids[i] = b.readUInt32BE(at + 1);
        at += 5;
      } else {
        throw fault('a path id is not an unsigned integer');
      }
    }
    const rest = new MsgpackReader(this.bytes, at, end);
    // The list is no level of its values: each was written from its own depth 0 (writeRecord).
    const values = rest.value(-1);
    const fresh = rest.value();
    if (!Array.isArray(values) || !Array.isArray(fresh) || values.length !== n || fresh.length % 2 !== 0 || !rest.done) throw fault(shape);
    this.announce(fresh);
    for (let i = 0; i < n; i++) {
      const m = this.local[ids[i] as number];
      if (m === undefined) throw fault(`path id ${ids[i] as number} was never announced`);
      ids[i] = m;
    }
    return { ts, ids, values, from: 0, to: n, filtered: false };
  }

  private announce(fresh: Value[]): void {
    for (let i = 0; i < fresh.length; i += 2) {
      const id = fresh[i];
      const p = fresh[i + 1];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff || typeof p !== 'string') throw fault('an announced path is not [id, path]');
      this.local[id] = this.idOf(p);
    }
  }
}

/**
 * The batches of a body in that wire, one at a time, ids mapped through `idOf` (called once
 * per path per stream); a record past `maxBytes` is a shard fault.
 */
export async function* decodeShardBatches(body: AsyncIterable<Buffer>, maxBytes: number, idOf: (path: string) => number, fromUs = 0): AsyncGenerator<ShardBatch> {
  const d = new ShardBatchDecoder(maxBytes, idOf, fromUs);
  for await (const chunk of body) {
    d.push(chunk);
    for (let b = d.next(); b; b = d.next()) yield b;
  }
  d.end();
}
