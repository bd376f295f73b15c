/**
 * The wire of a shard's batches to a merging node (GET /api/v1/shard/batches): each batch
 * exactly as recorded (a path updated twice in a batch kept twice, every value kind exact:
 * protocol/value-msgpack.ts), as a 4-byte big-endian length and the msgpack of
 * `[ts, [id, ...], [value, ...], [id, path, id, path, ...]]`: ids are the shard archive's
 * path ids, and the last array announces the ids this stream has not used before (each
 * path travels once per stream, not once per update). Records are gathered into chunks of
 * about historyChunkCharsTarget bytes; a consumer that reads slowly holds the cursor back.
 */
import { TapedeckError } from '../../protocol/errors.js';
import type { Value } from '../../protocol/value.js';
import { MsgpackWriter, decodeMsgpack, encodeMsgpack } from '../../protocol/value-msgpack.js';
import type { Cursor } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';

export const SHARD_BATCHES_MEDIA_TYPE = 'application/vnd.tapedeck.batches+msgpack';

const LENGTH_BYTES = 4;

/** One batch as received: ids in the receiver's path table (idOf), values as recorded. */
export interface ShardBatch {
  ts: number;
  ids: Uint32Array;
  values: Value[];
}

/** The cursor's batches up to `lastUs`, encoded, in chunks; `paths` is the archive's path table. */
export async function* encodeShardBatches(c: Cursor, paths: () => readonly string[], lastUs: number): AsyncGenerator<Buffer> {
  const w = new MsgpackWriter();
  const sent = new Set<number>();
  let parts: Buffer[] = [];
  let bytes = 0;
  for (let b = await c.nextRaw(); b && b.ts <= lastUs; b = await c.nextRaw()) {
    const ids: number[] = [];
    const values: Value[] = [];
    const fresh: Value[] = [];
    for (let i = b.from; i < b.to; i++) {
      const id = b.ids[i] as number;
      if (b.filtered && !c.matches(id)) continue;
      ids.push(id);
      values.push(b.values[i] as Value);
      if (!sent.has(id)) {
        sent.add(id);
        fresh.push(id, paths()[id] as string);
      }
    }
    const body = encodeMsgpack([b.ts, ids, values, fresh], w);
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

/**
 * The batches of a body in that wire, one at a time, ids mapped through `idOf` (called once
 * per path per stream); a record past `maxBytes` is a shard fault.
 */
export async function* decodeShardBatches(body: AsyncIterable<Buffer>, maxBytes: number, idOf: (path: string) => number): AsyncGenerator<ShardBatch> {
  const local: number[] = [];
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of body) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let at = 0;
    while (buf.length - at >= LENGTH_BYTES) {
      const n = buf.readUInt32BE(at);
      if (n > maxBytes) throw fault(`a record of ${n} bytes (limit ${maxBytes})`);
      if (buf.length - at - LENGTH_BYTES < n) break;
      yield batchOf(decodeMsgpack(buf.subarray(at + LENGTH_BYTES, at + LENGTH_BYTES + n)), local, idOf);
      at += LENGTH_BYTES + n;
    }
    buf = buf.subarray(at);
  }
  if (buf.length > 0) throw fault('the body ends inside a record');
}

function batchOf(v: Value, local: number[], idOf: (path: string) => number): ShardBatch {
  if (!Array.isArray(v) || v.length !== 4) throw fault('a record is not [ts, ids, values, announced]');
  const [ts, ids, values, fresh] = v as [Value, Value, Value, Value];
  if ((typeof ts !== 'number' && typeof ts !== 'bigint') || !Array.isArray(ids) || !Array.isArray(values) || !Array.isArray(fresh) || ids.length !== values.length || fresh.length % 2 !== 0) {
    throw fault('a record is not [ts, ids, values, announced]');
  }
  for (let i = 0; i < fresh.length; i += 2) {
    const id = fresh[i];
    const p = fresh[i + 1];
    if (typeof id !== 'number' || typeof p !== 'string') throw fault('an announced path is not [id, path]');
    local[id] = idOf(p);
  }
  const out = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const m = local[ids[i] as number];
    if (m === undefined) throw fault(`path id ${String(ids[i])} was never announced`);
    out[i] = m;
  }
  return { ts: Number(ts), ids: out, values: values as Value[] };
}
