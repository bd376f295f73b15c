/**
 * The two wire forms of a pushed batch, decoded to updates. Pure: no sockets, no archive.
 * - NDJSON: one line is `{ "ts"?: <time>, "updates": { "/path": value, ... } }`, values in
 *   the JSON form of docs/values.md (parseLine).
 * - msgpack (a binary WebSocket message): the same document as a msgpack map, values in the
 *   msgpack form of docs/values.md, or an array of such maps, one batch each
 *   (parseMsgpackMessage).
 * A line is decoded to its updates and time, or to the error that refuses it; a caller
 * counts, records and answers them alike whatever the form.
 */
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { epochNumberUs, parseTs } from '../../protocol/time.js';
import { isValidPath, type Update, type Value } from '../../protocol/value.js';
import { parseJsonText, valueFromJson } from '../../protocol/value-json.js';
import { MsgpackReader } from '../../protocol/value-msgpack.js';
import { SERVER_LIMITS } from '../limits.js';

export interface PushedBatch {
  updates: Update[];
  tsUs: number | undefined;
}

/** One line of a push: a batch, the error refusing it, or null for an empty NDJSON line. */
export type PushedLine = PushedBatch | { error: TapedeckError } | null;

/** Epoch number (s, ms or µs by magnitude) or RFC 3339 text to µs. */
function tsFromJson(ts: unknown): number {
  if (typeof ts === 'number') return epochNumberUs(ts, 'ts');
  if (typeof ts === 'string') return parseTs(ts);
  throw new TapedeckError('TPD_BAD_ARGUMENT', 'ts must be an epoch number or an RFC 3339 string');
}

function emptyBatch(): TapedeckError {
  // An empty batch would be answered as accepted yet leave no trace in the archive.
  return new TapedeckError('TPD_BAD_INGEST_LINE', '"updates" is empty: a batch holds at least one update');
}

function badPath(path: string): TapedeckError {
  return new TapedeckError('TPD_BAD_PATH', `invalid path ${JSON.stringify(path).slice(0, 200)}: a path starts with "/"`);
}

function tooLarge(bytes: number): TapedeckError {
  return new TapedeckError('TPD_BATCH_TOO_LARGE', `line is ${bytes} bytes; the limit is ${SERVER_LIMITS.ingestLineBytesMax} (ingestLineBytesMax)`);
}

/** One NDJSON line to a batch; throws a TapedeckError saying what is wrong. */
function parseLine(text: string): PushedBatch {
  // Bytes, as a msgpack message's are counted: a line's UTF-8 length (counted only when it could be past the limit).
  const max = SERVER_LIMITS.ingestLineBytesMax;
  const bytes = text.length * 3 <= max ? text.length : Buffer.byteLength(text, 'utf8');
  if (bytes > max) throw tooLarge(bytes);
  let doc: unknown;
  try {
    // parseJsonText refuses integers a double would round (TPD_BAD_ARGUMENT naming where).
    doc = parseJsonText(text);
  } catch (err) {
    if (isTapedeckError(err)) throw err;
    throw new TapedeckError('TPD_BAD_INGEST_LINE', `not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TapedeckError('TPD_BAD_INGEST_LINE', 'a line must be a JSON object { "ts"?, "updates" }');
  const o = doc as Record<string, unknown>;
  for (const k in o) if (k !== 'ts' && k !== 'updates') throw new TapedeckError('TPD_BAD_INGEST_LINE', `unknown key ${JSON.stringify(k)}; a line holds only "ts" and "updates"`);
  const u = o.updates;
  if (typeof u !== 'object' || u === null || Array.isArray(u)) throw new TapedeckError('TPD_BAD_INGEST_LINE', '"updates" must be an object of path: value');
  const updates: Update[] = [];
  for (const path in u) {
    if (!isValidPath(path)) throw badPath(path);
    // Values in the one JSON form (docs/values.md): tags become bytes, bigints, NaN, ±Inf, -0.
    updates.push([path, valueFromJson((u as Record<string, unknown>)[path], path)]);
  }
  if (updates.length === 0) throw emptyBatch();
  return { updates, tsUs: o.ts === undefined ? undefined : tsFromJson(o.ts) };
}

/** The lines of an NDJSON text, numbered by position (empty lines are null, and counted). */
export function* ndjsonLines(text: string): Generator<PushedLine> {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line.length === 0) {
      yield null;
      continue;
    }
    try {
      yield parseLine(line);
    } catch (err) {
      if (!isTapedeckError(err)) throw err;
      yield { error: err };
    }
  }
}

const SHAPE = 'a binary message is one msgpack map { ts?, updates } or an array of them';

/**
 * Bytes that are not msgpack: the reader's place in them is lost, so nothing after can be
 * read. Thrown inside a line's decoding; the line is refused with it and the message ends.
 */
class LostPlace extends Error {
  constructor(readonly refusal: TapedeckError) {
    super(refusal.message);
  }
}

function lost(err: unknown, where: string, code: 'TPD_BAD_INGEST_LINE' | 'TPD_BAD_ARGUMENT' = 'TPD_BAD_INGEST_LINE'): LostPlace {
  if (!isTapedeckError(err)) throw err;
  return new LostPlace(new TapedeckError(code, `${where}: ${err.message}`));
}

/** Reads one value; bytes that do not decode lose the place (`where` names it in the error). */
function valueAt(r: MsgpackReader, where: string, code?: 'TPD_BAD_ARGUMENT'): Value {
  try {
    // Depth counts from the value itself, as in the JSON form: the envelope adds none.
    return r.value(0);
  } catch (err) {
    throw lost(err, where, code);
  }
}

/** Map (0x80-0x8f, 0xde, 0xdf) or array (0x90-0x9f, 0xdc, 0xdd) header at the reader's place, read; undefined (nothing read) for any other value. */
function containerHeader(bytes: Uint8Array, r: MsgpackReader): { map: boolean; count: number } | undefined {
  const at = r.pos;
  const c = bytes[at];
  if (c === undefined) throw new LostPlace(new TapedeckError('TPD_BAD_INGEST_LINE', 'not msgpack: truncated'));
  const size = c === 0xdc || c === 0xde ? 2 : c === 0xdd || c === 0xdf ? 4 : (c & 0xe0) === 0x80 ? 0 : -1;
  if (size < 0) return undefined;
  if (at + 1 + size > bytes.length) throw new LostPlace(new TapedeckError('TPD_BAD_INGEST_LINE', 'not msgpack: truncated'));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = size === 0 ? c & 0x0f : size === 2 ? view.getUint16(at + 1) : view.getUint32(at + 1);
  const map = size === 0 ? c < 0x90 : c === 0xde || c === 0xdf;
  r.pos = at + 1 + size;
  // Every entry takes at least one byte (two for a map): a larger count is a lie, not work to do.
  if (count * (map ? 2 : 1) > bytes.length - r.pos) throw new LostPlace(new TapedeckError('TPD_BAD_INGEST_LINE', `not msgpack: ${map ? 'map' : 'array'} of ${count} longer than its bytes`));
  return { map, count };
}

/** `ts` as in NDJSON; an integer beyond 2^53 (a bigint here) is no time Tapedeck keeps. */
function tsFromMsgpack(ts: Value): number {
  if (typeof ts === 'bigint') throw new TapedeckError('TPD_BAD_ARGUMENT', `ts ${ts} is beyond 2^53: not an epoch time`);
  return tsFromJson(ts);
}

/** The updates map of a batch, read whole; the first path or value it refuses is kept in `refusal`. */
function readUpdates(bytes: Uint8Array, r: MsgpackReader, count: number): { updates: Update[]; refusal: TapedeckError | undefined } {
  const updates: Update[] = [];
  const seen = new Set<string>();
  let refusal: TapedeckError | undefined;
  for (let i = 0; i < count; i++) {
    const path = valueAt(r, 'a path');
    const where = typeof path === 'string' ? JSON.stringify(path).slice(0, 200) : 'a path';
    const value = valueAt(r, `the value of ${where}`, 'TPD_BAD_ARGUMENT');
    if (refusal) continue;
    if (typeof path !== 'string' || !isValidPath(path)) refusal = typeof path === 'string' ? badPath(path) : new TapedeckError('TPD_BAD_PATH', 'a path must be a msgpack string');
    else if (seen.has(path)) refusal = new TapedeckError('TPD_BAD_INGEST_LINE', `path ${where} is twice in one batch`);
    else {
      seen.add(path);
      updates.push([path, value]);
    }
  }
  return { updates, refusal };
}

/** One `{ ts?, updates }` map whose header (`count` keys) was read at `start`: read whole, so the next line starts after it. */
function readBatch(bytes: Uint8Array, r: MsgpackReader, count: number, start: number): PushedLine {
  let refusal: TapedeckError | undefined;
  let updates: Update[] | undefined;
  let ts: Value | undefined;
  for (let i = 0; i < count; i++) {
    const key = valueAt(r, 'a key');
    if (key === 'updates' && updates === undefined) {
      const head = containerHeader(bytes, r);
      if (head?.map) {
        const u = readUpdates(bytes, r, head.count);
        updates = u.updates;
        refusal ??= u.refusal;
        continue;
      }
      // Not a map: skip it whole (an array header was read: its elements are what is left).
      if (head) for (let j = 0; j < head.count; j++) valueAt(r, '"updates"');
      else valueAt(r, '"updates"');
      refusal ??= new TapedeckError('TPD_BAD_INGEST_LINE', '"updates" must be a map of path: value');
      updates = [];
      continue;
    }
    const value = valueAt(r, typeof key === 'string' ? JSON.stringify(key).slice(0, 100) : 'a value');
    if (key === 'ts' && ts === undefined) ts = value;
    else refusal ??= new TapedeckError('TPD_BAD_INGEST_LINE', typeof key === 'string' ? `key ${JSON.stringify(key).slice(0, 100)} is unknown or twice; a batch holds only "ts" and "updates"` : 'a key must be a msgpack string');
  }
  if (r.pos - start > SERVER_LIMITS.ingestLineBytesMax) return { error: tooLarge(r.pos - start) };
  if (refusal) return { error: refusal };
  if (updates === undefined) return { error: new TapedeckError('TPD_BAD_INGEST_LINE', '"updates" is missing: a batch is { ts?, updates }') };
  if (updates.length === 0) return { error: emptyBatch() };
  try {
    return { updates, tsUs: ts === undefined ? undefined : tsFromMsgpack(ts) };
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
    return { error: err };
  }
}

/** One line at the reader's place: a batch map, or the refusal of whatever else is there. */
function readLine(bytes: Uint8Array, r: MsgpackReader): PushedLine {
  const start = r.pos;
  const head = containerHeader(bytes, r);
  if (head?.map) return readBatch(bytes, r, head.count, start);
  if (head) for (let j = 0; j < head.count; j++) valueAt(r, 'a batch');
  else valueAt(r, 'a batch');
  return { error: new TapedeckError('TPD_BAD_INGEST_LINE', SHAPE) };
}

/**
 * The lines of a binary (msgpack) push message: one map is line 1, an array's elements are
 * lines 1..n. A line that is well-formed msgpack but not a good batch is refused and the
 * next one read; bytes that are not msgpack refuse the line they are in and end the message
 * (nothing after them can be found). Bytes left after the message are one more bad line.
 * Lazy: a caller that stops reading stops the decoding.
 */
export function* parseMsgpackMessage(bytes: Uint8Array): Generator<PushedLine> {
  const r = new MsgpackReader(bytes, 0, bytes.length, true);
  try {
    const head = containerHeader(bytes, r);
    if (head?.map) yield readBatch(bytes, r, head.count, 0);
    else if (head) for (let i = 0; i < head.count; i++) yield readLine(bytes, r);
    else {
      valueAt(r, 'a message');
      yield { error: new TapedeckError('TPD_BAD_INGEST_LINE', SHAPE) };
    }
  } catch (err) {
    if (!(err instanceof LostPlace)) throw err;
    yield { error: err.refusal };
    return;
  }
  if (!r.done) yield { error: new TapedeckError('TPD_BAD_INGEST_LINE', `${bytes.length - r.pos} byte(s) after the message: not msgpack`) };
}
