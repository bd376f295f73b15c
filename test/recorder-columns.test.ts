/**
 * The recorder's column path (path slots, writer.appendColumns) against the recorder it
 * replaced (spec filter, then writer.append of the kept [path, value] pairs, kept here as
 * `referenceRecord`): the same batches, good, filtered and hostile, give the same archive
 * bytes, the same outcomes and refusals, and the same latest values, before and after a
 * restart.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { Recorder, type RecordOutcome } from '../server/recorder.js';
import { compileSpec, type PathMatcher } from '../protocol/glob.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Update, Value } from '../protocol/value.js';
import { randomValue, rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

const small = { imageFrequencyBytes: 64 * 1024, flushIntervalMs: 0 };
/** A segment header's archive id, seq, creation time and their CRC end here (storage/codec/header.ts); the commit slots follow. */
const HEADER_IDENTITY_END = 48;

/** The recorder's record() before the column path (commit 7e52cf5), minus events, with one fix (below). */
class ReferenceRecorder {
  readonly latest = new Map<string, Value>();
  private readonly matcher: PathMatcher | undefined;
  constructor(readonly archive: Archive, spec: readonly string[]) {
    this.matcher = spec.length === 0 || spec.includes('/**') ? undefined : compileSpec(spec);
  }
  record(updates: Update[], tsUs: number): RecordOutcome {
    const m = this.matcher;
    if (!Array.isArray(updates)) return { ts: this.archive.writer!.append(updates, tsUs), kept: 0, filtered: 0 }; // throws
    // A malformed batch or update is left to append to refuse (TPD_BAD_ARGUMENT); the old
    // recorder read it first and threw a TypeError when a spec filtered.
    const kept = m ? updates.filter((u) => typeof u !== 'object' || u === null || (typeof u[0] === 'string' && m(u[0]))) : updates;
    const filtered = updates.length - kept.length;
    if (kept.length === 0) return { ts: undefined, kept: 0, filtered };
    const ts = this.archive.writer!.append(kept, tsUs);
    for (const u of kept) this.latest.set(u[0], u[1] ?? null);
    return { ts, kept: kept.length, filtered };
  }
}

/** A signalling NaN (quiet bit clear): its bits must reach the archive unchanged. */
const SIGNALLING_NAN = new Float64Array(new BigUint64Array([0x7ff0000000000001n]).buffer)[0] as number;

/** Batches of every kind the recorder meets: numbers only, mixed values, repeated paths, paths outside the spec, and refusals. */
function batchesFor(seed: number, count: number): unknown[] {
  const r = rng(seed);
  const paths = Array.from({ length: 400 }, (_, i) => `/r${i % 5}/dev-${i % 13}/m${i}`);
  const out: unknown[] = [];
  for (let b = 0; b < count; b++) {
    const n = 1 + Math.floor(r() * r() * 300);
    const kind = r();
    const updates: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const p = paths[Math.floor(r() * r() * paths.length)] as string;
      const v = kind < 0.6 ? Math.round(r() * 1e5) / 100 : kind < 0.62 ? SIGNALLING_NAN : r() < 0.5 ? -0 : randomValue(r);
      updates.push([p, v]);
    }
    if (kind > 0.97) {
      // Hostile: one bad element somewhere in an otherwise good batch.
      const bad = [null, 7, ['no-slash', 1], ['', 1], [42, 1], ['/ok/path', () => 1], ['/ok/path', Symbol('s')], ['/a/\u0000', 1], [undefined, 1]][Math.floor(r() * 9)];
      updates.splice(Math.floor(r() * updates.length), 0, bad);
    }
    if (kind > 0.995) out.push({ not: 'an array' });
    else out.push(updates);
  }
  return out;
}

type Result = { ok: RecordOutcome } | { refused: string };

async function outcome(f: () => RecordOutcome | Promise<RecordOutcome>): Promise<Result> {
  try {
    return { ok: await f() };
  } catch (err) {
    return { refused: isTapedeckError(err) ? `${err.code}: ${err.message}` : `not a TapedeckError: ${String(err)}` };
  }
}

async function segmentBytes(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) if (name.endsWith('.tpd') || name === 'current') out.set(name, await readFile(join(dir, name)));
  return out;
}

function bitsOf(v: Value | undefined): string {
  if (typeof v !== 'number') return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, v);
  return dv.getBigUint64(0).toString(16);
}

function latestOf(entries: Iterable<[string, Value]>): string[] {
  return [...entries].map(([p, v]) => `${p}=${bitsOf(v)}`);
}

async function compare(spec: string[], seed: number, specAfterRestart = spec): Promise<void> {
  const batches = batchesFor(seed, 1500);
  const specFirst = spec;
  const refDir = await tmpDir();
  const newDir = await tmpDir();
  let ts = 1_700_000_000_000_000;
  const run = async (part: unknown[], first: boolean): Promise<void> => {
    const spec = first ? specFirst : specAfterRestart;
    const refArchive = await Archive.open(refDir, small);
    const ref = new ReferenceRecorder(refArchive, spec);
    if (!first) {
      const c = refArchive.cursor();
      await c.seek('end');
      for (const [p, v] of await c.state()) ref.latest.set(p, v);
    }
    const newArchive = await Archive.open(newDir, small);
    const rec = await Recorder.open(newArchive, { spec });
    expect(latestOf(rec.latest.entries())).toStrictEqual(latestOf(ref.latest.entries()));
    let refused = 0;
    for (const [i, b] of part.entries()) {
      ts += 1 + (i % 7) * 1000;
      const want = await outcome(() => ref.record(b as Update[], ts));
      const got = await outcome(() => rec.record('test', b as Update[], ts));
      expect(got, `batch ${i} (seed ${seed})`).toStrictEqual(want);
      if ('refused' in want) refused++;
    }
    expect(refused).toBeGreaterThan(0);
    expect(latestOf(rec.latest.entries())).toStrictEqual(latestOf(ref.latest.entries()));
    expect(rec.latest.size).toBe(ref.latest.size);
    expect([...rec.latest.keys()]).toStrictEqual([...ref.latest.keys()]);
    for (const p of ['/r0/dev-0/m0', '/r9/none', 'no-slash']) {
      expect(rec.latest.has(p), p).toBe(ref.latest.has(p));
      expect(bitsOf(rec.latest.get(p)), p).toBe(bitsOf(ref.latest.get(p)));
    }
    await refArchive.close();
    await newArchive.close();
  };
  // Half, a restart (the recorder's slots start from the archive's end state), the rest.
  await run(batches.slice(0, 700), true);
  await run(batches.slice(700), false);
  const want = await segmentBytes(refDir);
  const got = await segmentBytes(newDir);
  expect([...got.keys()]).toStrictEqual([...want.keys()]);
  expect(want.size).toBeGreaterThan(0);
  // Every byte but the header's identity (bytes 16-48: archive id, seq, creation time, CRC).
  for (const [name, bytes] of want) {
    const other = got.get(name) as Buffer;
    expect(other.length, name).toBe(bytes.length);
    expect(Buffer.compare(other.subarray(0, 16), bytes.subarray(0, 16)), name).toBe(0);
    expect(Buffer.compare(other.subarray(HEADER_IDENTITY_END), bytes.subarray(HEADER_IDENTITY_END)), name).toBe(0);
  }
}

describe('recorder columns', () => {
  it('records the same bytes, outcomes, refusals and latest values as append of the kept pairs, everything kept', async () => {
    await compare(['/**'], scheduleSeed('RECORDER_COLUMNS_SEED', 'recorder columns, /**'));
  });

  it('the same with a record spec that leaves paths out', async () => {
    await compare(['/r1/**', '/r3/dev-*/m1*', '/r4/dev-2/*'], scheduleSeed('RECORDER_COLUMNS_SEED', 'recorder columns, spec'));
  });

  it('the same when the spec leaves out, after a restart, paths recorded before it (their latest values stay)', async () => {
    await compare(['/**'], scheduleSeed('RECORDER_COLUMNS_SEED', 'recorder columns, narrower spec'), ['/r2/**', '/r0/dev-1*/*']);
  });
});
