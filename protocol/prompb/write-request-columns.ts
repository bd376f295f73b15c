/**
 * A WriteRequest read into columns the remote-write source reuses from request to request
 * (server/sources/remote-write.ts): per series the byte range of its labels (the cache key
 * of its path) and the range of its samples; per sample its time, value and stale flag in
 * typed arrays. No object, array or string per series or sample.
 *
 * Two ways in, one result. The scan reads the shape every encoder writes (Prometheus,
 * client_golang, @bufbuild, protobufjs): a request of timeseries fields only, each series its
 * labels first then its samples, each sample `value` (field 1, absent when 0) then
 * `timestamp` (field 2, absent when 0), lengths and times that fit. Anything else (metadata,
 * exemplars, histograms, unknown or reordered fields, a limit broken, a truncated or
 * malformed field) is handed to the general decoder (write-request.ts), whose view is copied
 * into the same columns: its errors, its refusals and its reading of odd bytes stay the one
 * definition, and test/prom-remote-write-columns.test.ts checks both ways agree.
 */
import { decodeWriteRequest, STALE_HI, STALE_LO, type DecodeLimits } from './write-request.js';
/** Tag bytes of the fields the scan reads. */
const TAG_SERIES = 0x0a;
const TAG_LABEL = 0x0a;
const TAG_SAMPLE = 0x12;
const TAG_VALUE = 0x09;
const TAG_TIMESTAMP = 0x10;
/** Longest varint the scan reads itself: 8 bytes hold every ms time until the year 2^56 ms; longer ones go to the general decoder. */
const SCAN_VARINT_BYTES_MAX = 8;
/** First capacity of the per-series and per-sample columns (they double as needed and are kept). */
const FIRST_CAPACITY = 1024;

export class WriteRequestColumns {
  bytes: Uint8Array = new Uint8Array(0);
  dv: DataView = new DataView(new ArrayBuffer(0));
  series = 0;
  samples = 0;
  exemplars = 0;
  /** A series' histograms (only the general decoder meets them). */
  histograms = new Int32Array(FIRST_CAPACITY);
  /** [keyStart, keyEnd) of a series' label fields (tags included) when they come first; keyStart -1 when not (keys then holds its key). */
  keyStart = new Int32Array(FIRST_CAPACITY);
  keyEnd = new Int32Array(FIRST_CAPACITY);
  /** Keys of series whose labels are not one slice (general decoder only), and those series' Label spans. */
  keys: Array<string | undefined> = [];
  labelSpans: Array<number[] | undefined> = [];
  /** The samples of series i are [sampleEnd[i - 1], sampleEnd[i]) (from 0 for the first). */
  sampleEnd = new Int32Array(FIRST_CAPACITY);
  tsMs = new Float64Array(FIRST_CAPACITY);
  values = new Float64Array(FIRST_CAPACITY);
  /** 1 where the sample is Prometheus' stale marker (its value is then null). */
  stale = new Uint8Array(FIRST_CAPACITY);
  /** Smallest and largest sample time (one batch when equal). */
  minTsMs = 0;
  maxTsMs = 0;
  /** True when the last read took the general decoder (for tests and profiles). */
  general = false;

  /** Reads a WriteRequest; TPD_BAD_REMOTE_WRITE (the general decoder's) when it is not one or breaks a limit. */
  read(bytes: Uint8Array, limits: DecodeLimits): this {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.keys.length = 0;
    this.labelSpans.length = 0;
    this.general = !this.scan(limits);
    if (this.general) this.readGeneral(limits);
    return this;
  }

  /** The first sample of series i. */
  sampleStart(i: number): number {
    return i === 0 ? 0 : (this.sampleEnd[i - 1] as number);
  }

  /** The Label spans of series i ([start, end) pairs), as decodeLabels takes them. */
  spansOf(i: number): number[] {
    const given = this.labelSpans[i];
    if (given !== undefined) return given;
    // The scan checked these fields: tag, length, payload within the key's range.
    const spans: number[] = [];
    const b = this.bytes;
    const end = this.keyEnd[i] as number;
    for (let p = this.keyStart[i] as number; p < end;) {
      let n = 0;
      let scale = 1;
      let q = p + 1;
      for (;;) {
        const byte = b[q++] as number;
        n += (byte & 0x7f) * scale;
        if (byte < 0x80) break;
        scale *= 128;
      }
      spans.push(q, q + n);
      p = q + n;
    }
    return spans;
  }

  /** The usual shape read in one pass; false (columns unusable) at the first thing it does not read itself. */
  private scan(limits: DecodeLimits): boolean {
    const b = this.bytes;
    const dv = this.dv;
    const end = b.length;
    let series = 0;
    let k = 0;
    let minTs = Infinity;
    let maxTs = -Infinity;
    let pos = 0;
    while (pos < end) {
      if (b[pos] !== TAG_SERIES) return false;
      const len = scanVarint(b, pos + 1, end);
      if (len < 0) return false;
      const sStart = scanned;
      const sEnd = sStart + len;
      if (sEnd > end) return false;
      let p = sStart;
      let labels = 0;
      while (p < sEnd && b[p] === TAG_LABEL) {
        const n = scanVarint(b, p + 1, sEnd);
        if (n < 0 || n > sEnd - scanned) return false;
        p = scanned + n;
        if (++labels > limits.labelsPerSeriesMax) return false;
      }
      // Series without samples count against no sample: bounded by the same number (the general decoder refuses them).
      if (series >= limits.samplesMax) return false;
      if (series >= this.keyStart.length) this.growSeries();
      this.keyStart[series] = sStart;
      this.keyEnd[series] = p;
      this.histograms[series] = 0;
      while (p < sEnd) {
        if (b[p] !== TAG_SAMPLE) return false;
        const n = scanVarint(b, p + 1, sEnd);
        if (n < 0 || n > sEnd - scanned) return false;
        let q = scanned;
        const sampleEnd = q + n;
        let value = 0;
        let stale = 0;
        let ts = 0;
        if (q < sampleEnd && b[q] === TAG_VALUE) {
          if (sampleEnd - q < 9) return false;
          const lo = dv.getUint32(q + 1, true);
          const hi = dv.getUint32(q + 5, true);
          if (hi === STALE_HI && lo === STALE_LO) stale = 1;
          else value = dv.getFloat64(q + 1, true);
          q += 9;
        }
        if (q < sampleEnd && b[q] === TAG_TIMESTAMP) {
          ts = scanVarint(b, q + 1, sampleEnd);
          if (ts < 0) return false;
          q = scanned;
        }
        if (q !== sampleEnd) return false;
        // Checked per sample, so a hostile series of millions of empty samples grows nothing past the limit.
        if (k >= limits.samplesMax) return false;
        if (k >= this.tsMs.length) this.growSamples();
        this.tsMs[k] = ts;
        this.values[k] = value;
        this.stale[k] = stale;
        if (ts < minTs) minTs = ts;
        if (ts > maxTs) maxTs = ts;
        k++;
        p = sampleEnd;
      }
      this.sampleEnd[series] = k;
      series++;
      pos = sEnd;
    }
    this.series = series;
    this.samples = k;
    this.exemplars = 0;
    this.minTsMs = minTs;
    this.maxTsMs = maxTs;
    return true;
  }

  /** The general decoder's view copied into the columns (throws its errors). */
  private readGeneral(limits: DecodeLimits): void {
    const view = decodeWriteRequest(this.bytes, limits);
    let k = 0;
    let minTs = Infinity;
    let maxTs = -Infinity;
    this.exemplars = 0;
    view.series.forEach((s, i) => {
      if (i >= this.keyStart.length) this.growSeries();
      this.keyStart[i] = -1;
      this.keyEnd[i] = -1;
      this.keys[i] = s.key;
      this.labelSpans[i] = s.labelSpans;
      this.histograms[i] = s.histograms;
      this.exemplars += s.exemplars;
      for (let j = 0; j < s.tsMs.length; j++) {
        if (k >= this.tsMs.length) this.growSamples();
        const ts = s.tsMs[j] as number;
        const v = s.values[j] as number | null;
        this.tsMs[k] = ts;
        this.values[k] = v ?? 0;
        this.stale[k] = v === null ? 1 : 0;
        if (ts < minTs) minTs = ts;
        if (ts > maxTs) maxTs = ts;
        k++;
      }
      this.sampleEnd[i] = k;
    });
    this.series = view.series.length;
    this.samples = k;
    this.minTsMs = minTs;
    this.maxTsMs = maxTs;
  }

  private growSeries(): void {
    const n = this.keyStart.length * 2;
    this.keyStart = grown(this.keyStart, new Int32Array(n));
    this.keyEnd = grown(this.keyEnd, new Int32Array(n));
    this.histograms = grown(this.histograms, new Int32Array(n));
    this.sampleEnd = grown(this.sampleEnd, new Int32Array(n));
  }

  private growSamples(): void {
    const n = this.tsMs.length * 2;
    this.tsMs = grown(this.tsMs, new Float64Array(n));
    this.values = grown(this.values, new Float64Array(n));
    this.stale = grown(this.stale, new Uint8Array(n));
  }
}

function grown<T extends Int32Array | Float64Array | Uint8Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}

/** Where the last scanVarint ended (a module variable: no tuple per varint on the hot path). */
let scanned = 0;

/** The varint at `pos` (before `end`), or -1 when it is truncated or longer than the scan reads. */
function scanVarint(b: Uint8Array, pos: number, end: number): number {
  let v = 0;
  let scale = 1;
  for (let i = 0; i < SCAN_VARINT_BYTES_MAX; i++) {
    if (pos >= end) return -1;
    const byte = b[pos++] as number;
    v += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      if (v > Number.MAX_SAFE_INTEGER) return -1;
      scanned = pos;
      return v;
    }
    scale *= 128;
  }
  return -1;
}
