/**
 * Identity damage: a file of the archive replaced by, or joined by, a file of another
 * archive (the catalog, `current`, a rotated file), a rotated file replaced by a copy of
 * `current` (two files claiming one seq), or a file gone (`current` or a rotated one). Each is detected
 * (verify, and a problem at every open), the archive's own intact files are served exactly
 * (before the damage by reading on, after it by seeking past it), a writable open starts and
 * records, and no file's bytes are overwritten or lost: every segment file on disk before
 * the open is on disk after it, byte for byte (under its name or moved aside).
 *
 * DAMAGE_IDENTITY_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { copyFile, cp, readFile, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { parseTs } from '../protocol/time.js';
import { isTapedeckError } from '../protocol/errors.js';
import { rng, randomBatches } from './helpers/workload.js';
import { plain } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import type { Batch } from '../protocol/value.js';

const SEED = scheduleSeed('DAMAGE_IDENTITY_SEED', 'damage-identity');
const OPTIONS = { imageFrequencyBytes: 3000, flushIntervalMs: 0, rotateSizeBytes: 9000 };
const ROTATED = /^\d{4}-\d\d-\d\dT/;

function text(v: unknown): string {
  return JSON.stringify(plain(v), (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));
}

async function record(dir: string, batches: readonly Batch[]): Promise<void> {
  const a = await Archive.open(dir, OPTIONS);
  let i = 0;
  for (const b of batches) {
    a.writer!.append(b.updates, b.ts);
    if (++i % 30 === 0) await a.writer!.flush();
  }
  await a.close();
}

const rotatedNames = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => ROTATED.test(n)).sort();

/** Every segment file's bytes (not the catalog's), by name. */
async function segmentBytes(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const n of await readdir(dir)) if (!n.startsWith('catalog.sqlite') && n !== 'LOCK') out.set(n, await readFile(join(dir, n)));
  return out;
}

/** Whether `x` holds `bytes` but for the commit slots (48..96): what appending to `current` leaves. */
function grownFrom(x: Buffer, bytes: Buffer): boolean {
  if (x.length < bytes.length) return false;
  if (x.subarray(0, bytes.length).equals(bytes)) return true;
  return bytes.length > 96 && x.subarray(0, 48).equals(bytes.subarray(0, 48)) && x.subarray(96, bytes.length).equals(bytes.subarray(96));
}

/** Every file's bytes before are on disk after: a whole file, or the start of one (a writer appends to `current`). */
async function expectNothingOverwritten(dir: string, before: Map<string, Buffer>, where: string): Promise<void> {
  const after = [...(await segmentBytes(dir)).values()];
  for (const [name, bytes] of before) expect(after.some((x) => grownFrom(x, bytes)), `${where}: the bytes of ${name} are gone`).toBe(true);
}

interface Read {
  batches: Batch[];
  error: string | undefined;
}

async function readFrom(a: Archive, ts?: number): Promise<Read> {
  const c = a.cursor();
  if (ts !== undefined) await c.seek({ ts });
  const out: Batch[] = [];
  try {
    for (let b = await c.next(); b; b = await c.next()) out.push(b);
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
    return { batches: out, error: err.code };
  }
  return { batches: out, error: undefined };
}

function expectExactly(got: readonly Batch[], want: readonly Batch[], where: string): void {
  expect(got.map((b) => b.ts), `${where}: timestamps`).toEqual(want.map((b) => b.ts));
  for (let i = 0; i < want.length; i++) expect(text(got[i]!.updates), `${where}: batch ${i}`).toBe(text(want[i]!.updates));
}

interface Case {
  name: string;
  damage: (dir: string) => Promise<void>;
  /** Batches a read from the start serves, and whether an error ends it. */
  head: (readonly: boolean) => { batches: Batch[]; ends: boolean };
  /** A time past the damage to seek to, and what a read from there serves. */
  tail?: () => { ts: number; batches: Batch[] };
  problem: RegExp;
  /** A writable open settles it (a catalog rebuilt, a current moved aside): later opens need not report it. */
  settles?: boolean;
}

describe('identity damage', () => {
  it('another archive\'s catalog, current or rotated file, a stray file, a file gone: detected, intact data served, nothing overwritten, recording goes on', async () => {
    const r = rng(SEED);
    const root = await tmpDir('tapedeck-damage-identity-');
    const own = randomBatches(SEED, 900, { paths: 20, maxUpdates: 5 });
    const other = randomBatches(SEED + 1, 300 + Math.floor(r() * 900), { paths: 20, maxUpdates: 5, startTs: own[0]!.ts - Math.floor(r() * 3e9) });
    const A = join(root, 'A');
    const B = join(root, 'B');
    await record(A, own);
    await record(B, other);
    const names = await rotatedNames(A);
    const otherNames = await rotatedNames(B);
    expect(names.length).toBeGreaterThanOrEqual(3);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const upTo = (ts: number): Batch[] => own.filter((b) => b.ts <= ts);
    const after = (ts: number): Batch[] => own.filter((b) => b.ts > ts);
    const lastRotated = parseTs(names.at(-1)!);
    /** A seek to the first batch after `ts` (in the file after the damage), and the batches read from there. */
    const firstAfter = (ts: number): { ts: number; batches: Batch[] } => {
      const at = after(ts)[0]!.ts;
      return { ts: at, batches: after(at) };
    };
    const replaced = Math.floor(r() * names.length);
    const gone = Math.floor(r() * names.length);
    const copied = Math.floor(r() * names.length);
    const swapTo = Math.floor(r() * names.length);
    const swapFrom = (swapTo + 1 + Math.floor(r() * (names.length - 1))) % names.length;

    const cases: Case[] = [
      {
        name: 'the catalog of another archive',
        damage: async (d) => {
          for (const s of ['', '-wal', '-shm']) {
            await rm(join(d, `catalog.sqlite${s}`), { force: true });
            await copyFile(join(B, `catalog.sqlite${s}`), join(d, `catalog.sqlite${s}`)).catch(() => undefined);
          }
        },
        head: () => ({ batches: [...own], ends: false }),
        problem: /^catalog\.sqlite TPD_FOREIGN_FILE/,
        settles: true,
      },
      {
        name: 'current of another archive',
        damage: (d) => copyFile(join(B, 'current'), join(d, 'current')),
        // Read-only, the catalog's current is missing; a writable open moves the stray aside and starts a new one.
        head: (readonly) => ({ batches: upTo(lastRotated), ends: readonly }),
        problem: /^current TPD_FOREIGN_FILE/,
        settles: true,
      },
      {
        name: 'a stray file of another archive, first by name, and no catalog',
        damage: async (d) => {
          for (const s of ['', '-wal', '-shm']) await rm(join(d, `catalog.sqlite${s}`), { force: true });
          await copyFile(join(B, pick(otherNames)), join(d, '1999-01-01T00:00:00.000000Z'));
        },
        head: () => ({ batches: [...own], ends: false }),
        problem: /^1999-01-01T00:00:00\.000000Z TPD_FOREIGN_FILE/,
      },
      {
        name: `rotated file ${replaced} replaced by one of another archive`,
        damage: (d) => copyFile(join(B, pick(otherNames)), join(d, names[replaced]!)),
        head: () => ({ batches: replaced === 0 ? [] : upTo(parseTs(names[replaced - 1]!)), ends: true }),
        tail: () => firstAfter(parseTs(names[replaced]!)),
        problem: new RegExp(`^${names[replaced]!.replace(/\./g, '\\.')} TPD_FOREIGN_FILE`),
      },
      {
        name: `rotated file ${copied} replaced by a copy of current (two files, one seq)`,
        damage: (d) => copyFile(join(d, 'current'), join(d, names[copied]!)),
        head: () => ({ batches: copied === 0 ? [] : upTo(parseTs(names[copied - 1]!)), ends: true }),
        tail: () => firstAfter(parseTs(names[copied]!)),
        problem: new RegExp(`^${names[copied]!.replace(/\./g, '\\.')} TPD_CORRUPT_HEADER`),
      },
      {
        name: `rotated file ${swapTo} replaced by rotated file ${swapFrom}'s bytes (same archive, another seq)`,
        damage: (d) => copyFile(join(d, names[swapFrom]!), join(d, names[swapTo]!)),
        head: () => ({ batches: swapTo === 0 ? [] : upTo(parseTs(names[swapTo - 1]!)), ends: true }),
        tail: () => firstAfter(parseTs(names[swapTo]!)),
        problem: /TPD_CORRUPT_HEADER/,
      },
      {
        name: 'current gone',
        damage: (d) => unlink(join(d, 'current')),
        // Read-only, the catalog's current is missing; a writable open starts a new one.
        head: (readonly) => ({ batches: upTo(lastRotated), ends: readonly }),
        problem: /^current TPD_FILE_UNAVAILABLE/,
        settles: true,
      },
      {
        name: `rotated file ${gone} gone`,
        damage: (d) => unlink(join(d, names[gone]!)),
        head: () => ({ batches: gone === 0 ? [] : upTo(parseTs(names[gone - 1]!)), ends: true }),
        tail: () => firstAfter(parseTs(names[gone]!)),
        problem: new RegExp(`^${names[gone]!.replace(/\./g, '\\.')} TPD_FILE_UNAVAILABLE`),
      },
    ];

    let n = 0;
    for (const c of cases) {
      const where = `${c.name} (seed ${SEED})`;
      const dir = join(root, `t${n++}`);
      await cp(A, dir, { recursive: true });
      await c.damage(dir);
      const before = await segmentBytes(dir);
      const report = await verifyArchive(dir);
      expect(report.ok, `${where}: verify called it clean`).toBe(false);

      for (const [i, readonly] of [true, false, false].entries()) {
        const a = await Archive.open(dir, readonly ? { readonly: true } : OPTIONS);
        const label = `${where} ${readonly ? 'read-only' : 'writable'}`;
        try {
          if (i < 2 || c.settles !== true) expect(a.problems.map((p) => `${p.file} ${p.code}`).join('\n'), `${label}: problems`).toMatch(new RegExp(c.problem.source, 'm'));
          if (c.name.startsWith('the catalog') && !readonly) break; // rebuilt: checked below
          const head = c.head(readonly);
          const got = await readFrom(a);
          expectExactly(got.batches.filter((b) => b.ts <= own.at(-1)!.ts), head.batches, `${label} from the start`);
          expect(got.error !== undefined, `${label}: the read ${head.ends ? 'goes on past' : 'stops at'} the damage (${got.error})`).toBe(head.ends);
          if (head.ends) expect(got.error).toBe('TPD_FILE_UNAVAILABLE');
          if (c.tail) {
            const t = c.tail();
            expectExactly((await readFrom(a, t.ts)).batches.filter((b) => b.ts <= own.at(-1)!.ts), t.batches, `${label} past the damage`);
          }
          if (!readonly) {
            const ts = a.writer!.append([['/after/damage', n]]);
            await a.writer!.flush();
            expect(ts).toBeGreaterThan(own.at(-1)!.ts);
          }
        } finally {
          await a.close();
        }
        await expectNothingOverwritten(dir, before, label);
      }
      if (c.name.startsWith('the catalog')) {
        const a = await Archive.open(dir, { readonly: true });
        expectExactly((await readFrom(a)).batches.filter((b) => b.ts <= own.at(-1)!.ts), own, `${where} after the rebuild`);
        await a.close();
      }
      await rm(dir, { recursive: true });
    }
  });
});
