/**
 * The wire of a shard's batches to a merging node (GET /api/v1/shard/batches): each batch
 * exactly as recorded, as a 4-byte big-endian length and the msgpack of
 * `[ts, [path, value, path, value, ...]]` (protocol/value-msgpack.ts: every value kind
 * exact, a path updated twice in a batch kept twice). Records are gathered into chunks of
 * about historyChunkCharsTarget bytes; a consumer that reads slowly holds the cursor back.
 */
import { TapedeckError } from '../../protocol/errors.js';
import type { Batch, Value } from '../../protocol/value.js';
import { MsgpackWriter, decodeMsgpack, encodeMsgpack } from '../../protocol/value-msgpack.js';
import type { Cursor } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';

export const SHARD_BATCHES_MEDIA_TYPE = 'application/vnd.tapedeck.batches+msgpack';

const LENGTH_BYTES = 4;

/** The cursor's batches up to `lastUs`, encoded, in chunks. */
export async function* encodeShardBatches(c: Cursor, lastUs: number): AsyncGenerator<Buffer> {
  const w = new MsgpackWriter();
  let parts: Buffer[] = [];
  let bytes = 0;
  for (let b = await c.next(); b && b.ts <= lastUs; b = await c.next()) {
    const flat: Value[] = [];
    for (const [p, v] of b.updates) flat.push(p, v);
    const body = encodeMsgpack([b.ts, flat], w);
    const head = Buffer.allocUnsafe(LENGTH_BYTES);
    head.writeUInt32BE(body.length);
    parts.push(head, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    bytes += LENGTH_BYTES + body.length;
    if (bytes >= SERVER_LIMITS.historyChunkCharsTarget) {
      yield Buffer.concat(parts);
      parts = [];
      bytes = 0;
    }
  }
  if (bytes > 0) yield Buffer.concat(parts);
}

function fault(why: string): TapedeckError {
  return new TapedeckError('TPD_INTERNAL', `a shard sent malformed batches: ${why}`);
}

/** The batches of a body in that wire, one at a time; a record past `maxBytes` is a shard fault. */
export async function* decodeShardBatches(body: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<Batch> {
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of body) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let at = 0;
    while (buf.length - at >= LENGTH_BYTES) {
      const n = buf.readUInt32BE(at);
      if (n > maxBytes) throw fault(`a record of ${n} bytes (limit ${maxBytes})`);
      if (buf.length - at - LENGTH_BYTES < n) break;
      yield batchOf(decodeMsgpack(buf.subarray(at + LENGTH_BYTES, at + LENGTH_BYTES + n)));
      at += LENGTH_BYTES + n;
    }
    buf = buf.subarray(at);
  }
  if (buf.length > 0) throw fault('the body ends inside a record');
}

function batchOf(v: Value): Batch {
  if (!Array.isArray(v) || v.length !== 2 || (typeof v[0] !== 'number' && typeof v[0] !== 'bigint') || !Array.isArray(v[1]) || v[1].length % 2 !== 0) throw fault('a record is not [ts, [path, value, ...]]');
  const flat = v[1];
  const updates: Array<[string, Value]> = [];
  for (let i = 0; i < flat.length; i += 2) {
    const p = flat[i];
    if (typeof p !== 'string') throw fault('a path is not a string');
    updates.push([p, flat[i + 1] as Value]);
  }
  return { ts: Number(v[0]), updates };
}
