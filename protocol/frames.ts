/**
 * Frames that cross the session WebSocket, shared by server and clients. Pure.
 *
 * Server -> client frames carry `type`:
 *   state    full state at the position: every covered path, null where it had no value
 *   batch    one recorded batch, exactly as recorded (ts in µs, updates as [path, value] pairs)
 *   batches  several consecutive batches in one frame (sent when playing faster than real
 *            time or catching up, to save per-frame overhead; grouping and order are kept)
 *   controls the session's controls after any change
 *   end      playback reached `end` (or the session is closing)
 *   error    a stable code and message (a bad control names the control; the session lives on)
 *   info     informational (e.g. buffering, a step clamped at the start or end)
 *   coverage where the record is blind within the session's range: recorder gaps and source
 *            outages (protocol/coverage.ts), the newest `itemsMax`, `truncated` when more
 *   gap      playback crossed archive files that cannot be read (gone, not fetchable): the
 *            batches after `fromUs` up to `toUs` are lost; the state at `toUs` follows
 *   paths    msgpack only: path ids used by later frames ([id, path] pairs, each id once)
 *
 * In msgpack frames paths are replaced by their ids (`paths` frames announce them), so the
 * updates of state/batch frames are [id, value] pairs.
 *
 * Values travel in the one JSON form of protocol/value-json.ts (tags for bytes, bigints,
 * NaN/±Infinity/-0 and `$`-keyed user objects) and the msgpack form of
 * protocol/value-msgpack.ts; docs/values.md describes both.
 */
import type { ControlsInput, ControlsView } from './controls.js';
import type { Coverage, CoverageGap, SourceOutage } from './coverage.js';
import { TapedeckError } from './errors.js';
import { setOwn, type Value } from './value.js';
import { isJsonPlain, parseJsonText, valueFromJson, valueToJson, valueToJsonText } from './value-json.js';
import type { JsonBytesWriter } from './value-json-bytes.js';
import { otherIndexFrom, type ColumnBatchesView } from './msgpack-batch-frame.js';
import { decodeMsgpack } from './value-msgpack.js';

export type PathKey = string | number;

export interface BatchBody<K extends PathKey = string> {
  ts: number;
  updates: Array<[K, Value]>;
}

export type ServerFrame<K extends PathKey = string> =
  | { type: 'state'; ts: number | null; values: K extends string ? Record<string, Value> : Array<[number, Value]> }
  | ({ type: 'batch' } & BatchBody<K>)
  | { type: 'batches'; batches: Array<BatchBody<K>> }
  | { type: 'controls'; controls: ControlsView }
  | { type: 'end'; reason: 'end' | 'closed' | 'deleted' }
  | { type: 'error'; code: string; message: string; control?: string }
  | { type: 'info'; code: string; message: string }
  | CoverageFrame
  | GapFrame
  | { type: 'paths'; paths: Array<[number, string]> };

export interface CoverageFrame {
  type: 'coverage';
  gaps: CoverageGap[];
  outages: SourceOutage[];
  /** Older gaps or outages were left out (more than the limit touch the range). */
  truncated: boolean;
}

/** Playback crossed files that cannot be read (a `state` frame at `toUs` follows, then the batches after it). */
export interface GapFrame {
  type: 'gap';
  /** The last batch sent before the hole (null: none). */
  fromUs: number | null;
  /** The batches after fromUs up to this time are lost; the state at it is whole. */
  toUs: number;
  /** The files that could not be read, oldest first. */
  files: string[];
  message: string;
}

/**
 * The coverage frame for a range's coverage: its gaps and outages, at most `itemsMax` of
 * them together, the newest (by start) kept, each list in its own order.
 */
export function coverageFrame(c: Pick<Coverage, 'gaps' | 'outages'>, itemsMax: number): CoverageFrame {
  const max = Math.max(0, Math.floor(itemsMax));
  const total = c.gaps.length + c.outages.length;
  if (total <= max) return { type: 'coverage', gaps: c.gaps, outages: c.outages, truncated: false };
  if (max === 0) return { type: 'coverage', gaps: [], outages: [], truncated: true };
  // The max-th newest start: items starting after it stay, and as many at it as fit.
  const starts = [...c.gaps.map((g) => g.startUs), ...c.outages.map((o) => o.startUs)].sort((a, b) => b - a);
  const cut = starts[max - 1] as number;
  let atCut = max - starts.filter((s) => s > cut).length;
  const keep = <T extends { startUs: number }>(xs: T[]): T[] => xs.filter((x) => x.startUs > cut || (x.startUs === cut && atCut-- > 0));
  return { type: 'coverage', gaps: keep(c.gaps), outages: keep(c.outages), truncated: true };
}

export type ClientFrame = { type: 'control'; set: ControlsInput } | { type: 'ping' };

export const CLIENT_FRAME_SCHEMA_TYPES = ['control', 'ping'] as const;

/** The frame with every value in its JSON form (valueToJson); other fields are plain already. */
function jsonForm(frame: ServerFrame): unknown {
  const pairs = (us: Array<[string, Value]>): unknown[] => us.map(([p, v]) => [p, valueToJson(v)]);
  if (frame.type === 'batch') return { ...frame, updates: pairs(frame.updates) };
  if (frame.type === 'batches') return { ...frame, batches: frame.batches.map((b) => ({ ...b, updates: pairs(b.updates) })) };
  if (frame.type === 'state') {
    const values: Record<string, unknown> = {};
    for (const k of Object.keys(frame.values)) setOwn(values, k, valueToJson((frame.values as Record<string, Value>)[k] as Value));
    return { ...frame, values };
  }
  return frame;
}

function framePlain(frame: ServerFrame): boolean {
  if (frame.type === 'batch') {
    for (const u of frame.updates) if (!isJsonPlain(u[1])) return false;
  } else if (frame.type === 'batches') {
    for (const b of frame.batches) for (const u of b.updates) if (!isJsonPlain(u[1])) return false;
  } else if (frame.type === 'state') {
    const values = frame.values as Record<string, Value>;
    for (const k of Object.keys(values)) if (!isJsonPlain(values[k] as Value)) return false;
  }
  return true;
}

/** JSON text of a frame; values go through the value codec only when one needs a tag. */
export function encodeJsonFrame(frame: ServerFrame): string {
  return JSON.stringify(framePlain(frame) ? frame : jsonForm(frame));
}

interface RawJsonBatch {
  ts: number;
  ids: ArrayLike<number>;
  values: ArrayLike<Value>;
  from: number;
  to: number;
}

/** JSON-quoted paths by id, per path table (an archive's table only grows). */
const quotedPaths = new WeakMap<readonly string[], string[]>();

/**
 * JSON text of a `batch` frame (one view) or a `batches` frame (several), built from
 * decoded ids and values as text: each path is quoted once per path table, numbers and
 * strings are written directly, and only other values go through the value codec. The
 * text is the same as JSON.stringify of the frame's JSON form would give, at about twice
 * the speed (no `[path, value]` arrays to build).
 */
export function encodeJsonRawFrame(batches: readonly RawJsonBatch[], paths: readonly string[], match: ((id: number) => boolean) | undefined): string {
  let quoted = quotedPaths.get(paths);
  if (!quoted) {
    quoted = [];
    quotedPaths.set(paths, quoted);
  }
  const one = batches.length === 1;
  let out = one ? '{"type":"batch",' : '{"type":"batches","batches":[';
  for (let k = 0; k < batches.length; k++) {
    const b = batches[k] as RawJsonBatch;
    out += `${k === 0 ? '' : ','}${one ? '' : '{'}"ts":${b.ts},"updates":[`;
    let first = true;
    for (let i = b.from; i < b.to; i++) {
      const id = b.ids[i] as number;
      if (match && !match(id)) continue;
      const q = quoted[id] ?? (quoted[id] = JSON.stringify(paths[id]));
      out += `${first ? '[' : ',['}${q},${valueToJsonText(b.values[i] as Value)}]`;
      first = false;
    }
    out += one ? ']' : ']}';
  }
  return out + (one ? '}' : ']}');
}

/** UTF-8 of JSON-quoted paths by id, per path table (an archive's table only grows). */
const quotedPathBytes = new WeakMap<readonly string[], Uint8Array[]>();
const pathEncoder = new TextEncoder();

/**
 * encodeJsonRawFrame's text as UTF-8 bytes, written by `w` (protocol/value-json-bytes.ts)
 * without a string in between: what the socket sends either way, for less CPU. A copy.
 */
export function encodeJsonRawFrameBytes(w: JsonBytesWriter, batches: readonly RawJsonBatch[], paths: readonly string[], match: ((id: number) => boolean) | undefined): Uint8Array {
  const table = quotedPathsOf(paths);
  const one = batches.length === 1;
  w.reset();
  w.ascii(one ? '{"type":"batch",' : '{"type":"batches","batches":[');
  for (let k = 0; k < batches.length; k++) {
    const b = batches[k] as RawJsonBatch;
    w.ascii(k === 0 ? (one ? '"ts":' : '{"ts":') : ',{"ts":');
    // As the text form writes it (`${b.ts}`), whatever the number.
    w.ascii(String(b.ts));
    w.ascii(',"updates":[');
    let first = true;
    for (let i = b.from; i < b.to; i++) {
      const id = b.ids[i] as number;
      if (match && !match(id)) continue;
      w.pair(quotedPath(table, paths, id), b.values[i] as Value, first);
      first = false;
    }
    w.ascii(one ? ']' : ']}');
  }
  w.ascii(one ? '}' : ']}');
  return w.take();
}

/** The quoted UTF-8 of a path table's paths, each made at its first use. */
export function quotedPathsOf(paths: readonly string[]): Uint8Array[] {
  let quoted = quotedPathBytes.get(paths);
  if (!quoted) {
    quoted = [];
    quotedPathBytes.set(paths, quoted);
  }
  return quoted;
}

/** Path `id`'s quoted UTF-8 in `table` (quotedPathsOf), made at its first use. */
export function quotedPath(table: Uint8Array[], paths: readonly string[], id: number): Uint8Array {
  return table[id] ?? (table[id] = pathEncoder.encode(JSON.stringify(paths[id])));
}

/**
 * encodeJsonRawFrameBytes of batches [k0, k1) of a column view (protocol/msgpack-batch-frame.ts
 * ColumnBatchesView): the same bytes for the same batches. A copy.
 */
export function encodeJsonColumnFrameBytes(w: JsonBytesWriter, v: ColumnBatchesView, k0: number, k1: number, paths: readonly string[]): Uint8Array {
  const table = quotedPathsOf(paths);
  const one = k1 - k0 === 1;
  let j = otherIndexFrom(v, v.starts[k0] as number);
  let nextOther = j < v.otherCount ? (v.otherAt[j] as number) : -1;
  w.reset();
  w.ascii(one ? '{"type":"batch",' : '{"type":"batches","batches":[');
  for (let k = k0; k < k1; k++) {
    w.ascii(k === k0 ? (one ? '"ts":' : '{"ts":') : ',{"ts":');
    w.ascii(String(v.ts[k]));
    w.ascii(',"updates":[');
    const to = v.starts[k + 1] as number;
    for (let u = v.starts[k] as number; u < to; u++) {
      let value: Value;
      if (u === nextOther) {
        value = v.others[j++] as Value;
        nextOther = j < v.otherCount ? (v.otherAt[j] as number) : -1;
      } else {
        value = v.nums[u] as number;
      }
      w.pair(quotedPath(table, paths, v.ids[u] as number), value, u === v.starts[k]);
    }
    w.ascii(one ? ']' : ']}');
  }
  w.ascii(one ? '}' : ']}');
  return w.take();
}

/** The value a JSON frame carries (valueFromJson; `path` names it in errors). */
export function reviveValue(v: unknown, path = 'value'): Value {
  return valueFromJson(v, path);
}

/**
 * A frame a client sent (text: JSON; binary: msgpack, integers up to 2^53 as numbers so a
 * uint64 `pos` is taken), as an unchecked object: the route validates its shape. Anything
 * that does not decode is TPD_BAD_FRAME.
 */
export function decodeClientFrame(data: Uint8Array, binary: boolean): unknown {
  try {
    // From outside, read as ingest reads: a key twice in a map or object (`{"pos":"-1h","pos":"end"}`)
    // would keep one of the two controls without a word, and a msgpack str that is not UTF-8
    // would become U+FFFD; both are refused (TPD_BAD_FRAME, saying why).
    return binary ? decodeMsgpack(data, true, FRAME_ENVELOPE_LEVELS) : parseJsonText(textDecoder.decode(data));
  } catch (err) {
    const why = err instanceof TapedeckError ? `: ${err.message}` : '';
    throw new TapedeckError('TPD_BAD_FRAME', `frame is not valid JSON or msgpack${why}`, undefined, { cause: err });
  }
}

const textDecoder = new TextDecoder();

/**
 * Containers of the deepest frame around its values: the frame's map, `batches`, a batch's
 * map, `updates`, an [id, value] pair. The server writes each value from its own depth 0.
 */
const FRAME_ENVELOPE_LEVELS = 5;

/** A WebSocket message (text: JSON; binary: msgpack) as an unchecked object; TPD_BAD_FRAME when it does not decode. */
function decodeMessage(data: Uint8Array, binary: boolean, what: string): unknown {
  try {
    return binary ? decodeMsgpack(data, false, FRAME_ENVELOPE_LEVELS) : JSON.parse(textDecoder.decode(data));
  } catch (err) {
    throw new TapedeckError('TPD_BAD_FRAME', `${what} is not valid JSON or msgpack`, undefined, { cause: err });
  }
}

/** A server frame that carries no recorded value: what encodeMsgpackFrame writes (state and batches have writers of their own). */
export type ValuelessFrame<K extends string | number = string> = Exclude<ServerFrame<K>, { type: 'state' | 'batch' | 'batches' }>;

/** A server frame as a client reads it: paths resolved, values revived, `batches` split into `batch` frames. */
export type DecodedFrame =
  | { type: 'state'; ts: number | null; values: Record<string, Value> }
  | { type: 'batch'; ts: number; updates: Array<[string, Value]> }
  | Exclude<ServerFrame, { type: 'state' | 'batch' | 'batches' | 'paths' }>;

type WirePairs = Array<[string | number, unknown]>;

/**
 * The one decoder of server frames for clients (the SDK, hence the terminal player): a
 * message (JSON text or msgpack bytes) to the frames it carries, with msgpack path ids
 * resolved through the `paths` frames seen on this connection and JSON values revived by
 * the JSON codec. Values a codec refuses throw TPD_BAD_FRAME naming the path. One decoder
 * per connection (path ids are per connection).
 */
export class FrameDecoder {
  private readonly paths = new Map<number, string>();

  decode(data: Uint8Array, binary: boolean): DecodedFrame[] {
    const f = decodeMessage(data, binary, 'server frame') as { type?: unknown; [k: string]: unknown };
    if (typeof f !== 'object' || f === null || typeof f.type !== 'string') throw new TapedeckError('TPD_BAD_FRAME', 'server frame has no type');
    const json = !binary;
    const key = (k: string | number): string => (typeof k === 'number' ? (this.paths.get(k) ?? `#${k}`) : k);
    // [path, value] with a string first: never an array of doubles, so a NaN keeps its bits.
    const update = (k: string | number, v: unknown): [string, Value] => {
      const p = key(k);
      return [p, json ? revive(v, p) : (v as Value)];
    };
    const fix = (pairs: WirePairs): Array<[string, Value]> => pairs.map(([k, v]) => update(k, v));
    switch (f.type) {
      case 'paths':
        for (const [id, p] of f.paths as Array<[number, string]>) this.paths.set(id, p);
        return [];
      case 'batches':
        if (!Array.isArray(f.batches)) throw new TapedeckError('TPD_BAD_FRAME', 'batches frame has no batches array');
        return (f.batches as WireBatch[]).map((b) => {
          const updates = updatesOf(b, binary, fix, update); // first: it refuses a batch that is not an object
          return { type: 'batch', ts: b.ts, updates };
        });
      case 'batch':
        return [{ type: 'batch', ts: f.ts as number, updates: updatesOf(f as unknown as WireBatch, binary, fix, update) }];
      case 'state': {
        const pairs = (Array.isArray(f.values) ? f.values : Object.entries(f.values as Record<string, unknown>)) as WirePairs;
        const values: Record<string, Value> = {};
        for (const [p, v] of fix(pairs)) setOwn(values, p, v);
        return [{ type: 'state', ts: f.ts as number | null, values }];
      }
      default:
        return [f as DecodedFrame];
    }
  }
}

/** A batch in either layout (docs/playback.md, "Layouts"): `updates` pairs, or `paths` / `ids` with `values`. */
interface WireBatch {
  ts: number;
  updates?: WirePairs;
  paths?: unknown;
  ids?: unknown;
  values?: unknown;
}

/**
 * A batch's updates, whichever layout it came in (JSON columns name `paths`, msgpack columns
 * `ids`): `fix` of its pairs, or `update` of each path (id) and value; TPD_BAD_FRAME for
 * anything else: both layouts at once, the other format's key, columns that do not pair up,
 * updates that are not an array.
 */
function updatesOf(b: WireBatch, binary: boolean, fix: (pairs: WirePairs) => Array<[string, Value]>, update: (k: string | number, v: unknown) => [string, Value]): Array<[string, Value]> {
  if (typeof b !== 'object' || b === null) throw new TapedeckError('TPD_BAD_FRAME', 'batch is not an object');
  const columns = b.paths !== undefined || b.ids !== undefined || b.values !== undefined;
  if (b.updates !== undefined) {
    if (columns || !Array.isArray(b.updates)) throw new TapedeckError('TPD_BAD_FRAME', 'batch has updates that are not an array, or updates and columns both');
    return fix(b.updates);
  }
  const keys = (binary ? b.ids : b.paths) as Array<string | number> | undefined;
  const values = b.values as unknown[] | undefined;
  if ((binary ? b.paths : b.ids) !== undefined || !Array.isArray(keys) || !Array.isArray(values) || keys.length !== values.length) {
    throw new TapedeckError('TPD_BAD_FRAME', `batch has neither updates nor ${binary ? 'ids' : 'paths'} and values of one length`);
  }
  const out = new Array<[string, Value]>(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = update(keys[i] as string | number, values[i]);
  return out;
}

function revive(v: unknown, path: string): Value {
  try {
    return valueFromJson(v, path);
  } catch (err) {
    throw new TapedeckError('TPD_BAD_FRAME', (err as Error).message, undefined, { cause: err });
  }
}
