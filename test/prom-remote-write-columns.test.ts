/**
 * The remote-write source's columnar path (protocol/prompb/write-request-columns.ts, the byte-keyed
 * series cache server/sources/series-key-table.ts) against the source as it was
 * (test/helpers/remote-write-oracle.ts): the same seeded requests, hostile ones included, recorded
 * through both into two real archives give the same answers and errors request by request, and
 * the same archives (every batch's time, every path, every value bit for bit).
 */
import { pino } from 'pino';
import snappy from 'snappy';
import { describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { WriteRequestColumns } from '../protocol/prompb/write-request-columns.js';
import { decodeWriteRequest } from '../protocol/prompb/write-request.js';
import type { Batch, Value } from '../protocol/value.js';
import { Recorder } from '../server/recorder.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { RemoteWriteSource, type ArchiveGate } from '../server/sources/remote-write.js';
import { archiveGate } from '../server/sources/remote-write-gate.js';
import { SeriesKeyTable } from '../server/sources/series-key-table.js';
import type { SourceContext } from '../server/sources/source.js';
import type { AckLevel } from '../server/sources/push.js';
import { Archive } from '../storage/archive.js';
import { OracleRemoteWriteSource } from './helpers/remote-write-oracle.js';
import { readAll } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

// ---- protobuf by hand: any field order, unknown fields, odd encodings, invalid UTF-8 ----

type Bytes = number[];

function varint(n: number): Bytes {
  const out: Bytes = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function field(no: number, payload: Bytes): Bytes {
  return [...varint((no << 3) | 2), ...varint(payload.length), ...payload];
}

const utf8 = (s: string): Bytes => [...Buffer.from(s, 'utf8')];

function f64(bits: bigint): Bytes {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(bits);
  return [...b];
}

function bitsOf(x: number): bigint {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.readBigUInt64LE();
}

const STALE_BITS = 0x7ff0000000000002n;

/** A sample: its value's 64 bits (undefined: no value field), its time (undefined: no field), and how it is laid out. */
interface SampleSpec {
  bits: bigint | undefined;
  ts: number | undefined;
  reversed?: boolean;
  unknown?: boolean;
}

function sampleBytes(s: SampleSpec): Bytes {
  const v = s.bits === undefined ? [] : [0x09, ...f64(s.bits)];
  const t = s.ts === undefined ? [] : [0x10, ...varint(s.ts)];
  const u = s.unknown ? [0x18, 0x05] : [];
  return s.reversed ? [...t, ...u, ...v] : [...v, ...t, ...u];
}

interface SeriesSpec {
  labels: Bytes[];
  samples: SampleSpec[];
  /** Labels after the samples, an exemplar, a histogram, an unknown field. */
  labelsLast?: boolean;
  exemplar?: boolean;
  histogram?: boolean;
  unknown?: boolean;
}

function seriesBytes(s: SeriesSpec): Bytes {
  const labels = s.labels.flatMap((l) => field(1, l));
  const samples = s.samples.flatMap((x) => field(2, sampleBytes(x)));
  const extra = [...(s.exemplar ? field(3, [0x12, 0x00]) : []), ...(s.histogram ? field(4, [0x08, 0x01]) : []), ...(s.unknown ? [0x48, 0x01] : [])];
  return s.labelsLast ? [...samples, ...extra, ...labels] : [...labels, ...samples, ...extra];
}

function labelBytes(name: Bytes, value: Bytes): Bytes {
  return [...field(1, name), ...field(2, value)];
}

// ---- a seeded workload of requests ----

const NAMES = ['up', 'node_cpu_seconds_total', 'a/b', 'x=y', 'm%20', 'é', '{*}?[x]', 'ctl\u0001\u007f', ''];
const LABEL_NAMES = ['job', 'instance', 'a', 'b', 'le', 'ifName', 'zz/%'];
const LABEL_VALUES = ['node', 'host-1:9100', '', '/', '=', '%', '*?[]{}', '\u007f', 'ü', 'Ethernet1/1', 'a=b/c%d', 'x'.repeat(200)];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

/** A label set as wire labels; a hostile one is often refused (no name, a name twice, an empty name, invalid UTF-8, a path too long). */
function labelSet(r: () => number, hostile: boolean): Bytes[] {
  const out: Bytes[] = [];
  const x = r();
  if (x > 0.1 || !hostile) out.push(labelBytes(utf8('__name__'), utf8(pick(r, hostile ? NAMES : NAMES.slice(0, -1)))));
  const n = Math.floor(r() * 4);
  const used = new Set<string>();
  for (let i = 0; i < n; i++) {
    const k = pick(r, LABEL_NAMES);
    if (used.has(k) && (!hostile || r() < 0.5)) continue;
    used.add(k);
    out.push(labelBytes(utf8(k), utf8(pick(r, LABEL_VALUES))));
  }
  const y = hostile ? r() : 1;
  if (y < 0.1) out.push(labelBytes([], utf8('v')));
  else if (y < 0.2) out.push(labelBytes(utf8('bad'), [0x61, 0xff, 0xfe]));
  else if (y < 0.3) out.push(labelBytes(utf8('long'), utf8('y'.repeat(5000))));
  else if (y < 0.4) out.push([0x08, 0x01, ...labelBytes(utf8('odd'), utf8('field'))]); // an unknown field inside a Label
  // Another order of the same labels: another key, the same path.
  if (r() < 0.2) out.reverse();
  return out;
}

const QUIET_NAN_PAYLOAD = 0x7ff8000000000abcn;
const SIGNALLING_NAN_PAYLOAD = 0x7ff0000000000123n;

function valueBits(r: () => number): bigint | undefined {
  const x = r();
  if (x < 0.05) return undefined; // 0, as encoders write it
  if (x < 0.1) return STALE_BITS;
  if (x < 0.13) return bitsOf(NaN);
  if (x < 0.16) return QUIET_NAN_PAYLOAD;
  if (x < 0.18) return SIGNALLING_NAN_PAYLOAD;
  if (x < 0.22) return 0x8000000000000000n; // -0
  if (x < 0.25) return 0n; // 0 written explicitly
  if (x < 0.28) return bitsOf(pick(r, [Infinity, -Infinity, Number.MAX_VALUE, 5e-324]));
  if (x < 0.6) return bitsOf(Math.floor(r() * 1e6));
  return bitsOf(Math.round(r() * 1e6) / 100);
}

interface Workload {
  bodies: Uint8Array[];
  acks: AckLevel[];
}

function workload(seed: number, requests: number): Workload {
  const r = rng(seed);
  // The first 50 label sets are valid; the last 10 hostile (most of them refused).
  const universe = Array.from({ length: 60 }, (_, i) => labelSet(r, i >= 50));
  let t = 1_700_000_000_000;
  const bodies: Uint8Array[] = [];
  const acks: AckLevel[] = [];
  for (let q = 0; q < requests; q++) {
    const kind = r();
    acks.push(r() < 0.05 ? 'durable' : 'memory');
    if (kind < 0.05 && bodies.length > 0) {
      bodies.push(pick(r, bodies.slice(-5))); // a retry: the same bytes again
      continue;
    }
    if (kind < 0.07) {
      bodies.push(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3])); // not snappy
      continue;
    }
    // Usually the next ms (or the same one: the next µs of it); sometimes one already past.
    t += r() < 0.3 ? 0 : 1 + Math.floor(r() * 3);
    // A clean request (most): valid label sets, samples in order, no odd encoding.
    const hostile = r() < 0.3;
    const h = (p: number): boolean => hostile && r() < p;
    const tsOf = (): number => (h(0.05) ? t - 2 - Math.floor(r() * 5) : t);
    const multi = r() < 0.15;
    const series: SeriesSpec[] = [];
    const count = Math.floor(r() * 12);
    const first = Math.floor(r() * 50);
    for (let i = 0; i < count; i++) {
      // A clean request carries each valid label set once (so no path twice).
      const labels = hostile ? pick(r, universe) : (universe[(first + i * 7) % 50] as Bytes[]);
      const ts = tsOf();
      const samples: SampleSpec[] = [{ bits: valueBits(r), ts: h(0.02) ? undefined : ts }];
      if (multi) for (let j = 1; j < 3; j++) samples.push({ bits: valueBits(r), ts: ts + j });
      if (h(0.1)) samples.push({ ...(samples[0] as SampleSpec) }); // two equal samples at one time
      if (h(0.05)) samples.push({ bits: valueBits(r), ts }); // two samples at one time, perhaps different
      const odd = r();
      if (odd < 0.04) (samples[0] as SampleSpec).reversed = true;
      else if (odd < 0.06) (samples[0] as SampleSpec).unknown = true;
      if (r() < 0.03) samples.length = 0;
      series.push({
        labels, samples,
        labelsLast: r() < 0.03, exemplar: r() < 0.03, histogram: h(0.03), unknown: r() < 0.02,
      });
    }
    if (h(0.15) && series.length > 0) series.push({ ...(series[0] as SeriesSpec) }); // the same series twice
    if (multi) t += 2; // the next request starts after this one's last time
    let bytes = series.flatMap((s) => field(1, seriesBytes(s)));
    const extra = hostile ? r() : 0.02 + r();
    if (extra < 0.03) bytes = [...bytes, ...field(3, [0x08, 0x01])]; // metadata
    else if (extra < 0.05) bytes = [...bytes, 0x20, 0x07]; // an unknown varint field
    // Damaged bytes only in the last requests: a changed byte may make a valid request of a
    // time far ahead, and every request after it is then refused as older.
    else if (q >= requests - 60 && extra < 0.15 && bytes.length > 2) bytes = bytes.slice(0, Math.floor(r() * bytes.length)); // truncated
    else if (q >= requests - 60 && extra < 0.3 && bytes.length > 2) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256); // a byte changed
    bodies.push(snappy.compressSync(Buffer.from(bytes)));
  }
  return { bodies, acks };
}

// ---- two real archives, one per implementation ----

interface Side {
  archive: Archive;
  recorder: Recorder;
  write: (body: Uint8Array, ack: AckLevel) => Promise<unknown>;
  close: () => Promise<void>;
}

async function side(make: (ctx: SourceContext) => RemoteWriteSource | OracleRemoteWriteSource): Promise<Side> {
  const archive = await Archive.open(await tmpDir('tapedeck-rwcols-'), { flushIntervalMs: 0 });
  const recorder = await Recorder.open(archive);
  const source = make({ name: 'prom', sink: recorder.sink('prom'), log: pino({ level: 'silent' }), defaultPollIntervalMs: 1000 });
  const writer = archive.writer as NonNullable<Archive['writer']>;
  const gate: ArchiveGate = archiveGate(archive, writer);
  return {
    archive, recorder,
    write: (body, ack) => source.write(body, gate, ack),
    close: async () => {
      await source.stop();
      await archive.close();
    },
  };
}

type Answer = { ok: unknown } | { code: string; message: string };

async function answer(p: Promise<unknown>): Promise<Answer> {
  try {
    return { ok: await p };
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
    return { code: err.code, message: err.message };
  }
}

/**
 * A value as text that keeps every bit of a number (-0 included) but a NaN's payload: the
 * source as it was kept a NaN's bits or not depending on V8's tier (a NaN stored into an
 * array of doubles by optimised code is quieted or made canonical: with PROM_COLUMNS_SEED=844697
 * it recorded 0x7ff8000000000000 for a sample of 0x7ff8000000000abc, and 0x7ff8000000000123 for
 * 0x7ff0000000000123), so no bit pattern is its answer. docs/prometheus.md: a NaN is recorded
 * as NaN, its payload not promised; the stale marker, which is one, is null (compared exactly).
 */
function exact(v: Value): string {
  if (typeof v !== 'number') return JSON.stringify(v);
  return Number.isNaN(v) ? 'NaN' : `f64:${bitsOf(v).toString(16)}`;
}

function exactBatches(batches: Batch[]): string[] {
  return batches.map((b) => `${b.ts} ${b.updates.map(([p, v]) => `${JSON.stringify(p)}=${exact(v)}`).join(' ')}`);
}

async function compare(seed: number, requests: number, seriesCachedMax: number): Promise<{ recorded: number; refused: Set<string> }> {
  return compareOn(workload(seed, requests), seed, seriesCachedMax);
}

async function compareOn(w: Workload, seed: number, seriesCachedMax: number): Promise<{ recorded: number; refused: Set<string> }> {
  const next = await side((ctx) => new RemoteWriteSource(ctx, {}, { seriesCachedMax }));
  const old = await side((ctx) => new OracleRemoteWriteSource(ctx, {}, seriesCachedMax));
  const refused = new Set<string>();
  let recorded = 0;
  try {
    for (const [i, body] of w.bodies.entries()) {
      const ack = w.acks[i] as AckLevel;
      const a = await answer(next.write(body, ack));
      const b = await answer(old.write(body, ack));
      expect(a, `request ${i} (seed ${seed})`).toStrictEqual(b);
      if ('code' in a) refused.add(a.code);
      else recorded++;
    }
    await next.archive.writer?.flush();
    await old.archive.writer?.flush();
    const got = exactBatches(await readAll(next.archive.cursor()));
    const want = exactBatches(await readAll(old.archive.cursor()));
    expect(got.length).toBeGreaterThan(0);
    expect(got).toStrictEqual(want);
    expect([...next.recorder.latest].map(([p, v]) => `${p}=${exact(v)}`)).toStrictEqual([...old.recorder.latest].map(([p, v]) => `${p}=${exact(v)}`));
  } finally {
    await next.close();
    await old.close();
  }
  return { recorded, refused };
}

describe('remote write through columns, against the source as it was', () => {
  it('gives the same answers, errors and archives on seeded hostile requests (a roomy cache, and one evicted every few requests)', async () => {
    const seed = scheduleSeed('PROM_COLUMNS_SEED', 'prom-remote-write-columns');
    for (const [k, max] of [SERVER_LIMITS.remoteWriteSeriesCachedMax, 7, 1].entries()) {
      const { recorded, refused } = await compare(seed + k, 500, max);
      console.log(`seed ${seed + k}, cache of ${max}: ${recorded} of 500 requests recorded`);
      // The workload reaches what it means to: most requests recorded, every kind of refusal met.
      expect(recorded).toBeGreaterThan(200);
      expect([...refused].sort()).toStrictEqual(['TPD_BAD_REMOTE_WRITE', 'TPD_REMOTE_WRITE_OUT_OF_ORDER']);
    }
  }, 120_000);

  it('keeps its duplicate checks across the growth of its per-path arrays (a request of 3 000 new series, then one of them again)', async () => {
    const name = (i: number): Bytes[] => [labelBytes(utf8('__name__'), utf8('wide')), labelBytes(utf8('i'), utf8(String(i)))];
    const sample = (bits: bigint, ts: number): SampleSpec => ({ bits, ts });
    const t = 1_700_000_000_000;
    // Each request 3 000 series never seen, so each grows the arrays while it is read.
    const request = (ts: number, again: number, value: number): Uint8Array => {
      const k = ts - t;
      const series: SeriesSpec[] = Array.from({ length: 3000 }, (_, i) => ({ labels: name(k * 3000 + i), samples: [sample(bitsOf(i), ts)] }));
      // A series again, after the arrays grew (one met before and one after): the same value is one update, another refuses the request.
      series.push({ labels: name(k * 3000 + again), samples: [sample(bitsOf(value), ts)] });
      return snappy.compressSync(Buffer.from(series.flatMap((x) => field(1, seriesBytes(x)))));
    };
    const w: Workload = {
      bodies: [request(t, 5, 5), request(t + 1, 2500, 2500), request(t + 2, 5, 6), request(t + 3, 2500, 7), request(t + 4, 2999, 8)],
      acks: ['memory', 'memory', 'memory', 'memory', 'memory'],
    };
    const { recorded, refused } = await compareOn(w, 0, SERVER_LIMITS.remoteWriteSeriesCachedMax);
    expect(recorded).toBe(2);
    expect([...refused]).toStrictEqual(['TPD_REMOTE_WRITE_OUT_OF_ORDER']);
  });

  it('reads the usual shape itself and hands every other to the general decoder, with its result or its error', () => {
    const seed = scheduleSeed('PROM_COLUMNS_DECODE_SEED', 'prom-remote-write-columns decode');
    const w = workload(seed, 400);
    const limits = { samplesMax: 50, labelsPerSeriesMax: 4 };
    const cols = new WriteRequestColumns();
    let scanned = 0;
    let general = 0;
    for (const body of w.bodies) {
      let bytes: Buffer;
      try {
        bytes = snappy.uncompressSync(Buffer.from(body)) as Buffer;
      } catch {
        continue;
      }
      let want: unknown;
      try {
        const v = decodeWriteRequest(bytes, limits);
        want = v.series.map((s) => ({ labels: s.labelSpans.length, ts: s.tsMs, values: s.values.map((x) => (x === null ? null : bitsOf(x).toString(16))), h: s.histograms }));
      } catch (err) {
        want = (err as Error).message;
      }
      let got: unknown;
      try {
        cols.read(bytes, limits);
        got = Array.from({ length: cols.series }, (_, i) => {
          const ts: number[] = [];
          const values: Array<string | null> = [];
          for (let k = cols.sampleStart(i); k < (cols.sampleEnd[i] as number); k++) {
            ts.push(cols.tsMs[k] as number);
            values.push(cols.stale[k] === 1 ? null : bitsOf(cols.values[k] as number).toString(16));
          }
          return { labels: cols.spansOf(i).length, ts, values, h: cols.histograms[i] };
        });
        if (cols.general) general++;
        else scanned++;
      } catch (err) {
        got = (err as Error).message;
      }
      expect(got).toStrictEqual(want);
    }
    expect(scanned).toBeGreaterThan(100);
    expect(general).toBeGreaterThan(20);
  });

  it('the scan refuses nothing itself: a request past samplesMax or labelsPerSeriesMax gets the general decoder\'s refusal', () => {
    const cols = new WriteRequestColumns();
    const name = labelBytes(utf8('__name__'), utf8('up'));
    const many = Buffer.from(field(1, [...field(1, name), ...Array.from({ length: 11 }, () => field(2, [0x10, 0x01])).flat()]));
    expect(() => cols.read(many, { samplesMax: 10, labelsPerSeriesMax: 4 })).toThrow(/more than 10 samples/);
    expect(cols.read(many, { samplesMax: 11, labelsPerSeriesMax: 4 }).samples).toBe(11);
    expect(cols.general).toBe(false);
    const labels = Buffer.from(field(1, Array.from({ length: 5 }, () => field(1, name)).flat()));
    expect(() => cols.read(labels, { samplesMax: 10, labelsPerSeriesMax: 4 })).toThrow(/more than 4 labels/);
    expect(cols.read(labels, { samplesMax: 10, labelsPerSeriesMax: 5 }).general).toBe(false);
  });
});

describe('SeriesKeyTable', () => {
  it('finds exactly the keys added, against a Map of their bytes, through growth and clear (keys that are prefixes of one another, differ in one byte, empty)', () => {
    const seed = scheduleSeed('SERIES_KEY_TABLE_SEED', 'series-key-table');
    const r = rng(seed);
    const table = new SeriesKeyTable<number>();
    const oracle = new Map<string, number>();
    const buf = Buffer.alloc(4096);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const base = Array.from({ length: 300 }, (_, i) => i % 251);
    for (let i = 0; i < 60_000; i++) {
      if (i === 40_000) {
        table.clear();
        oracle.clear();
      }
      // Keys near one another: a prefix of the base, one byte changed, at some offset in the buffer.
      const len = Math.floor(r() * 40) + (r() < 0.1 ? 200 : 0);
      const at = Math.floor(r() * 64);
      for (let j = 0; j < len; j++) buf[at + j] = base[j] as number;
      if (len > 0 && r() < 0.7) buf[at + Math.floor(r() * len)] = Math.floor(r() * 4);
      const key = buf.toString('latin1', at, at + len);
      const want = oracle.get(key);
      expect(table.get(buf, dv, at, at + len)).toBe(want);
      if (want === undefined) {
        table.add(buf, at, at + len, i);
        oracle.set(key, i);
      }
    }
    expect(table.size).toBe(oracle.size);
    expect(oracle.size).toBeGreaterThan(1000);
  });
});
