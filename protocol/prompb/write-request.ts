/**
 * A Prometheus remote-write 1.0 WriteRequest (types.proto, remote.proto beside this file),
 * decoded from its protobuf bytes into what Tapedeck records. Pure: bytes in, series out.
 *
 * Why not the generated code (gen/remote_pb.ts) on the hot path: its reflective decoder
 * builds a message object per label and per sample and a bigint per timestamp; on 10 000
 * series it decodes about 80 000 samples/s here, far below what the archive appends. This
 * decoder reads only the fields remote write 1.0 defines, keeps label strings undecoded
 * until a series is new (the raw label bytes are its cache key), and is checked against
 * the generated code in test/prom-remote-write.test.ts (random requests encoded by
 * @bufbuild/protobuf decode to the same series and samples). Tests and the benchmark use
 * the generated code to encode.
 *
 * Rules: unknown fields are skipped (as protobuf wants); metadata (field 3) is skipped;
 * exemplars are counted and skipped; native histograms are counted (the caller refuses
 * them). A sample whose value is Prometheus' stale marker (the NaN with bits
 * 0x7ff0000000000002) decodes as null: JavaScript numbers do not keep NaN payloads, so the
 * marker would otherwise be indistinguishable from a NaN value.
 */
import { TapedeckError } from '../errors.js';
import { valueList } from '../value.js';

export interface SeriesView {
  /** The raw bytes of the series' Label fields (tags included) as a latin1 string: equal labels in equal order, equal key. */
  key: string;
  /** [start, end) of each Label message in the request's bytes. */
  labelSpans: number[];
  /** Sample timestamps, ms since the epoch. */
  tsMs: number[];
  /** Sample values; null for the stale marker. */
  values: Array<number | null>;
  exemplars: number;
  histograms: number;
}

export interface WriteRequestView {
  bytes: Uint8Array;
  series: SeriesView[];
  samples: number;
}

export interface DecodeLimits {
  samplesMax: number;
  labelsPerSeriesMax: number;
}

/** Prometheus' stale marker NaN (0x7ff0000000000002) as its high and low 32-bit words. */
export const STALE_HI = 0x7ff00000;
export const STALE_LO = 0x00000002;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function bad(message: string): TapedeckError {
  return new TapedeckError('TPD_BAD_REMOTE_WRITE', `not a WriteRequest: ${message}`);
}

/** A cursor over protobuf bytes; every read checks the end. */
class Reader {
  pos: number;
  constructor(readonly b: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }

  /** An unsigned varint that must fit a double exactly (lengths, tags, timestamps). */
  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw bad('truncated varint');
      const byte = this.b[this.pos++] as number;
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw bad('varint out of range (a negative or huge int64)');
        return v;
      }
      scale *= 128;
    }
    throw bad('varint longer than 10 bytes');
  }

  /** [start, end) of a length-delimited field's payload, moving past it. */
  span(): [number, number] {
    const n = this.varint();
    const start = this.pos;
    if (n > this.end - start) throw bad(`length ${n} runs past the end of its message`);
    this.pos = start + n;
    return [start, this.pos];
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) this.advance(8);
    else if (wire === WIRE_LEN) this.span();
    else if (wire === WIRE_I32) this.advance(4);
    else throw bad(`unsupported wire type ${wire}`);
  }

  advance(n: number): void {
    if (n > this.end - this.pos) throw bad('truncated fixed-size field');
    this.pos += n;
  }
}

/** Decodes a WriteRequest; TPD_BAD_REMOTE_WRITE when the bytes are not one or break a limit. */
export function decodeWriteRequest(bytes: Uint8Array, limits: DecodeLimits): WriteRequestView {
  const r = new Reader(bytes, 0, bytes.length);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = latin1Of(bytes);
  const out: WriteRequestView = { bytes, series: [], samples: 0 };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      // Empty series cost no sample but an object each: 2 bytes of body apiece (a snappy
      // bomb of 10 MB made 100 million and ran the heap out). A real series has a sample.
      if (out.series.length >= limits.samplesMax) throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `more than ${limits.samplesMax} series in one request (remoteWriteSamplesMax: each series carries a sample)`);
      const [s, e] = r.span();
      const series = decodeSeries(bytes, dv, latin1, s, e, limits);
      out.samples += series.tsMs.length;
      if (out.samples > limits.samplesMax) throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `more than ${limits.samplesMax} samples in one request (remoteWriteSamplesMax)`);
      out.series.push(series);
    } else {
      checkTag(tag);
      r.skip(tag & 7);
    }
  }
  return out;
}

function checkTag(tag: number): void {
  if (tag >>> 3 === 0) throw bad('field number 0');
}

function decodeSeries(bytes: Uint8Array, dv: DataView, latin1: (s: number, e: number) => string, start: number, end: number, limits: DecodeLimits): SeriesView {
  const r = new Reader(bytes, start, end);
  // values in generic elements (protocol/value.ts valueList): a NaN's bits stay as sent.
  const s: SeriesView = { key: '', labelSpans: [], tsMs: [], values: valueList() as Array<number | null>, exemplars: 0, histograms: 0 };
  // Where the labels end when they all come first (as Prometheus writes them): the key is
  // then one slice of the message, tags and lengths included, which equal labels in equal
  // order always encode to.
  let labelsEnd = start;
  let labelsFirst = true;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    if ((tag & 7) === WIRE_LEN && field >= 1 && field <= 4) {
      const [a, b] = r.span();
      if (field === 1) {
        if (s.labelSpans.length >= 2 * limits.labelsPerSeriesMax) throw new TapedeckError('TPD_BAD_REMOTE_WRITE', `a series has more than ${limits.labelsPerSeriesMax} labels (remoteWriteLabelsPerSeriesMax)`);
        s.labelSpans.push(a, b);
        if (labelsFirst) labelsEnd = b;
        continue;
      }
      labelsFirst = false;
      if (field === 2) decodeSample(bytes, dv, a, b, s);
      else if (field === 3) s.exemplars++;
      else s.histograms++;
    } else {
      checkTag(tag);
      r.skip(tag & 7);
      labelsFirst = false;
    }
  }
  s.key = labelsKey(s.labelSpans, labelsEnd, start, latin1);
  return s;
}

/** The label fields' bytes as one string: one slice when they come first, else each label's bytes joined. */
function labelsKey(spans: number[], labelsEnd: number, start: number, latin1: (s: number, e: number) => string): string {
  if (spans.length === 0 || spans[spans.length - 1] === labelsEnd) return latin1(start, labelsEnd);
  // \u0100 is no latin1 character, so the joined form never equals a single slice.
  let key = '\u0100';
  for (let i = 0; i < spans.length; i += 2) key += latin1(spans[i] as number, spans[i + 1] as number) + '\u0100';
  return key;
}

function decodeSample(bytes: Uint8Array, dv: DataView, start: number, end: number, s: SeriesView): void {
  const r = new Reader(bytes, start, end);
  let value: number | null = 0;
  let ts = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_I64)) {
      const p = r.pos;
      r.advance(8);
      const lo = dv.getUint32(p, true);
      const hi = dv.getUint32(p + 4, true);
      value = hi === STALE_HI && lo === STALE_LO ? null : dv.getFloat64(p, true);
    } else if (tag === ((2 << 3) | WIRE_VARINT)) {
      // int64 on the wire: a negative time is ten bytes past 2^53 and refused by varint().
      ts = r.varint();
    } else {
      checkTag(tag);
      r.skip(tag & 7);
    }
  }
  s.tsMs.push(ts);
  s.values.push(value);
}

// ignoreBOM: a leading U+FEFF is part of a label (Prometheus keeps it); without it the decoder drops it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The labels of a series as [name, value] pairs in wire order; TPD_BAD_REMOTE_WRITE for invalid UTF-8. */
export function decodeLabels(bytes: Uint8Array, spans: readonly number[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < spans.length; i += 2) {
    const r = new Reader(bytes, spans[i] as number, spans[i + 1] as number);
    let name = '';
    let value = '';
    while (r.pos < r.end) {
      const tag = r.varint();
      if (tag === ((1 << 3) | WIRE_LEN) || tag === ((2 << 3) | WIRE_LEN)) {
        const [a, b] = r.span();
        let text: string;
        try {
          text = utf8.decode(bytes.subarray(a, b));
        } catch {
          throw new TapedeckError('TPD_BAD_REMOTE_WRITE', 'a label name or value is not valid UTF-8');
        }
        if (tag >>> 3 === 1) name = text;
        else value = text;
      } else {
        checkTag(tag);
        r.skip(tag & 7);
      }
    }
    out.push([name, value]);
  }
  return out;
}

/** A latin1 view of byte ranges: Node's Buffer where it exists (no copy of the whole), else char codes. */
function latin1Of(bytes: Uint8Array): (s: number, e: number) => string {
  if (typeof Buffer !== 'undefined') {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return (s, e) => buf.toString('latin1', s, e);
  }
  return (s, e) => {
    let out = '';
    for (let i = s; i < e; i++) out += String.fromCharCode(bytes[i] as number);
    return out;
  };
}
