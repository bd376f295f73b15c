/**
 * The reading half of the msgpack value codec (protocol/value-msgpack.ts describes the
 * form and re-exports this): hostile input gets a TPD_BAD_ARGUMENT, never a crash. Also
 * takes what msgpackr wrote before this codec (docs/values.md): strings holding WTF-8
 * surrogates, float32, integer map keys.
 */
import { TapedeckError } from './errors.js';
import { PROTOCOL_LIMITS } from './limits.js';
import { VALUE_DEPTH_MAX, canonicalInteger, setOwn, valueArray, type Value } from './value.js';
import { MsgpackExt } from './msgpack-ext.js';

/**
 * Lenient (U+FFFD for bytes that are not UTF-8: columns msgpackr wrote long ago); keeps a
 * leading U+FEFF, which is part of the string: without ignoreBOM a TextDecoder drops it, and
 * a string over SHORT_STRING_BYTES starting with one came back from the archive without it.
 */
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });
/** Refuses bytes that are not UTF-8; keeps a leading U+FEFF (it is part of the string). */
const strictUtf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Strings up to this many bytes are decoded in JS (faster than TextDecoder for short ones). */
const SHORT_STRING_BYTES = 64;

function malformed(why: string): TapedeckError {
  return new TapedeckError('TPD_BAD_ARGUMENT', `malformed msgpack: ${why}`);
}

/** Reads msgpack values from bytes[pos, end). Hostile input gets a TPD_BAD_ARGUMENT, never a crash. */
export class MsgpackReader {
  pos: number;
  private readonly view: DataView;

  /**
   * `strict` (for ingest: bytes from outside) refuses what the lenient reading of archived
   * columns takes and would change: a str that is not UTF-8 (U+FFFD in its place; WTF-8
   * surrogates too: a lone surrogate travels as ext 1), a map key that is not a string
   * (1 and "1" would be one key) and a key twice in one map (the first value lost).
   */
  constructor(private readonly buf: Uint8Array, pos = 0, private readonly end = buf.length, private readonly strict = false) {
    this.pos = pos;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.end) throw malformed('truncated');
    this.pos = at + n;
    return at;
  }

  private u8(): number {
    return this.buf[this.need(1)] as number;
  }

  private u16(): number {
    return this.view.getUint16(this.need(2));
  }

  private u32(): number {
    return this.view.getUint32(this.need(4));
  }

  value(depth = 0): Value {
    const c = this.u8();
    if (c < 0x80) return c;
    if (c >= 0xe0) return c - 0x100;
    if (c <= 0x8f) return this.map(c & 0x0f, depth);
    if (c <= 0x9f) return this.array(c & 0x0f, depth);
    if (c <= 0xbf) return this.string(c & 0x1f);
    const v = this.view;
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.u8());
      case 0xc5: return this.bin(this.u16());
      case 0xc6: return this.bin(this.u32());
      case 0xc7: return this.ext(this.u8());
      case 0xc8: return this.ext(this.u16());
      case 0xc9: return this.ext(this.u32());
      case 0xca: return v.getFloat32(this.need(4));
      case 0xcb: return v.getFloat64(this.need(8));
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return this.int64(false);
      case 0xd0: return v.getInt8(this.need(1));
      case 0xd1: return v.getInt16(this.need(2));
      case 0xd2: return v.getInt32(this.need(4));
      case 0xd3: return this.int64(true);
      case 0xd4: return this.ext(1);
      case 0xd5: return this.ext(2);
      case 0xd6: return this.ext(4);
      case 0xd7: return this.ext(8);
      case 0xd8: return this.ext(16);
      case 0xd9: return this.string(this.u8());
      case 0xda: return this.string(this.u16());
      case 0xdb: return this.string(this.u32());
      case 0xdc: return this.array(this.u16(), depth);
      case 0xdd: return this.array(this.u32(), depth);
      case 0xde: return this.map(this.u16(), depth);
      case 0xdf: return this.map(this.u32(), depth);
      default: throw malformed(`byte 0x${c.toString(16)} starts no value`);
    }
  }

  /**
   * value() with the items of a frame's pairs read in place: a positive fixint, a uint8 or
   * uint16 (path ids), a float64 (most numbers); anything else through value(). Small, so
   * array() inlines it, which value() is too large for: the same fast paths inside value()
   * (the tag read in place, float64 first) decoded a fabric frame 10-15 % slower.
   */
  private item(depth: number): Value {
    const at = this.pos;
    const end = this.end;
    if (at < end) {
      const b = this.buf;
      const c = b[at] as number;
      if (c < 0x80) {
        this.pos = at + 1;
        return c;
      }
      if (c === 0xcb && at + 9 <= end) {
        this.pos = at + 9;
        return this.view.getFloat64(at + 1);
      }
      if (c === 0xcc && at + 2 <= end) {
        this.pos = at + 2;
        return b[at + 1] as number;
      }
      if (c === 0xcd && at + 3 <= end) {
        this.pos = at + 3;
        return ((b[at + 1] as number) << 8) | (b[at + 2] as number);
      }
    }
    return this.value(depth);
  }

  /**
   * A uint64 or int64 as canonicalInteger gives it: a number within ±(2^53 - 1), else a
   * bigint. The number from its two 32-bit halves (hi x 2^32 + lo is exact while |hi| <
   * 2^21, and not a safe integer past that), with no bigint made: counters past 2^32 are
   * most of a poll's numbers.
   */
  private int64(signed: boolean): number | bigint {
    const at = this.need(8);
    const v = this.view;
    const n = (signed ? v.getInt32(at) : v.getUint32(at)) * 4294967296 + v.getUint32(at + 4);
    if (Number.isSafeInteger(n)) return n;
    return canonicalInteger(signed ? v.getBigInt64(at) : v.getBigUint64(at));
  }

  private bin(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.slice(at, at + n);
  }

  private array(n: number, depth: number): Value[] {
    // Every element takes at least one byte: a larger count is a lie, not an allocation.
    if (n > this.end - this.pos) throw malformed('array longer than its bytes');
    if (depth >= VALUE_DEPTH_MAX) throw malformed(`nested deeper than ${VALUE_DEPTH_MAX} levels`);
    // An array of only numbers is kept as doubles, which changes a NaN's bits (valueArray):
    // at the first NaN the items move to generic elements, where every bit stays.
    let out = new Array<Value>(n);
    let generic = false;
    for (let i = 0; i < n; i++) {
      const v = this.item(depth + 1);
      if (v !== v && !generic) {
        const g = valueArray(n);
        for (let j = 0; j < i; j++) g[j] = out[j] as Value;
        out = g;
        generic = true;
      }
      out[i] = v;
    }
    return out;
  }

  private map(n: number, depth: number): Record<string, Value> {
    if (n * 2 > this.end - this.pos) throw malformed('map longer than its bytes');
    if (depth >= VALUE_DEPTH_MAX) throw malformed(`nested deeper than ${VALUE_DEPTH_MAX} levels`);
    const out: Record<string, Value> = {};
    for (let i = 0; i < n; i++) {
      const k = this.value(depth + 1);
      // Integer keys came from older writers that stringified nothing; JS keys are strings.
      if (typeof k !== 'string' && (typeof k !== 'number' || this.strict)) throw malformed('a map key is not a string');
      const key = String(k);
      if (this.strict && Object.prototype.hasOwnProperty.call(out, key)) throw malformed(`key ${JSON.stringify(key).slice(0, 200)} is twice in one map`);
      setOwn(out, key, this.value(depth + 1));
    }
    return out;
  }

  private ext(n: number): Value {
    const type = this.view.getInt8(this.need(1));
    const at = this.need(n);
    if (type === MsgpackExt.UTF16) {
      if (n % 2 !== 0) throw malformed('UTF-16 string of odd length');
      return utf16le(this.buf, at, at + n);
    }
    if (type === MsgpackExt.BIGINT) {
      // At ingest a bigint is bounded (reading a huge one's text would hold the event loop).
      if (this.strict && n - (this.buf[at] === 45 ? 1 : 0) > PROTOCOL_LIMITS.bigintDigitsMax) throw malformed(`bigint of ${n} characters; at most ${PROTOCOL_LIMITS.bigintDigitsMax} digits (bigintDigitsMax)`);
      const text = utf8Decoder.decode(this.buf.subarray(at, at + n));
      if (!/^-?[0-9]+$/.test(text)) throw malformed('bigint extension is not decimal');
      return canonicalInteger(BigInt(text));
    }
    throw malformed(`unknown extension type ${type}`);
  }

  private string(n: number): string {
    const at = this.need(n);
    if (this.strict) return this.utf8String(at, n);
    if (n <= CACHED_STRING_BYTES) return cachedString(this.buf, at, at + n);
    if (n <= SHORT_STRING_BYTES) {
      const s = ascii(this.buf, at, at + n);
      if (s !== undefined) return s;
    }
    if (n <= SHORT_STRING_BYTES || hasSurrogateBytes(this.buf, at, at + n)) return wtf8(this.buf, at, at + n);
    return utf8Decoder.decode(this.buf.subarray(at, at + n));
  }

  /** A str that must be UTF-8 (strict). */
  private utf8String(at: number, n: number): string {
    if (n <= SHORT_STRING_BYTES) {
      const s = ascii(this.buf, at, at + n);
      if (s !== undefined) return s;
    }
    try {
      return strictUtf8Decoder.decode(this.buf.subarray(at, at + n));
    } catch {
      throw malformed('a str is not UTF-8 (a string with a lone surrogate travels as ext 1)');
    }
  }
}

/**
 * Short strings (keys, enum-like values such as "up") repeat in a column: a small cache by
 * their bytes returns the same string without decoding it again.
 */
const CACHED_STRING_BYTES = 16;
const STRING_CACHE_SLOTS = 4096;
const cacheBytes: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(STRING_CACHE_SLOTS);
const cacheStrings: string[] = new Array<string>(STRING_CACHE_SLOTS);

function cachedString(b: Uint8Array, from: number, to: number): string {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
  const slot = (h >>> 0) & (STRING_CACHE_SLOTS - 1);
  const k = cacheBytes[slot];
  if (k !== undefined && k.length === to - from) {
    let i = 0;
    while (i < k.length && k[i] === b[from + i]) i++;
    if (i === k.length) return cacheStrings[slot] as string;
  }
  const s = ascii(b, from, to) ?? wtf8(b, from, to);
  cacheBytes[slot] = b.slice(from, to);
  cacheStrings[slot] = s;
  return s;
}

const asciiCodes: number[] = [];

/** Short ASCII text, or undefined when a byte is not ASCII. */
function ascii(b: Uint8Array, from: number, to: number): string | undefined {
  asciiCodes.length = to - from;
  for (let i = from; i < to; i++) {
    const c = b[i] as number;
    if (c >= 0x80) return undefined;
    asciiCodes[i - from] = c;
  }
  return String.fromCharCode.apply(null, asciiCodes);
}

/** Lead bytes of a 3-byte sequence encoding U+D800..U+DFFF (WTF-8, as msgpackr wrote lone surrogates). */
function hasSurrogateBytes(b: Uint8Array, from: number, to: number): boolean {
  for (let i = b.indexOf(0xed, from); i >= 0 && i < to - 1; i = b.indexOf(0xed, i + 1)) if ((b[i + 1] as number) >= 0xa0) return true;
  return false;
}

function utf16le(b: Uint8Array, from: number, to: number): string {
  const units: number[] = [];
  let s = '';
  for (let i = from; i < to; i += 2) {
    units.push((b[i] as number) | ((b[i + 1] as number) << 8));
    if (units.length === 4096) s += String.fromCharCode(...units.splice(0));
  }
  return s + String.fromCharCode(...units);
}

/** UTF-8 that also takes encoded surrogates (WTF-8); anything invalid becomes U+FFFD. */
function wtf8(b: Uint8Array, from: number, to: number): string {
  const units: number[] = [];
  let s = '';
  let i = from;
  while (i < to) {
    const c = b[i++] as number;
    let cp = 0xfffd;
    if (c < 0x80) cp = c;
    else if (c >= 0xc2 && c < 0xe0 && i < to && ((b[i] as number) & 0xc0) === 0x80) cp = ((c & 0x1f) << 6) | ((b[i++] as number) & 0x3f);
    else if (c >= 0xe0 && c < 0xf0 && i + 1 < to && ((b[i] as number) & 0xc0) === 0x80 && ((b[i + 1] as number) & 0xc0) === 0x80) {
      cp = ((c & 0x0f) << 12) | (((b[i] as number) & 0x3f) << 6) | ((b[i + 1] as number) & 0x3f);
      i += 2;
      if (cp < 0x800) cp = 0xfffd;
    } else if (c >= 0xf0 && c < 0xf5 && i + 2 < to && ((b[i] as number) & 0xc0) === 0x80 && ((b[i + 1] as number) & 0xc0) === 0x80 && ((b[i + 2] as number) & 0xc0) === 0x80) {
      cp = ((c & 0x07) << 18) | (((b[i] as number) & 0x3f) << 12) | (((b[i + 1] as number) & 0x3f) << 6) | ((b[i + 2] as number) & 0x3f);
      i += 3;
      if (cp < 0x10000 || cp > 0x10ffff) cp = 0xfffd;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 | (cp >> 10), 0xdc00 | (cp & 0x3ff));
    } else {
      units.push(cp);
    }
    if (units.length >= 4096) s += String.fromCharCode(...units.splice(0));
  }
  return s + String.fromCharCode(...units);
}

/**
 * One value filling `bytes` exactly; `strict` for bytes from outside (MsgpackReader).
 * `envelopeLevels`: containers around the values that are no level of theirs (a session
 * frame's map, lists and pairs), so a value within valueDepthMax reads inside them.
 */
export function decodeMsgpack(bytes: Uint8Array, strict = false, envelopeLevels = 0): Value {
  const r = new MsgpackReader(bytes, 0, bytes.length, strict);
  const v = r.value(-envelopeLevels);
  if (!r.done) throw malformed('trailing bytes after the value');
  return v;
}
