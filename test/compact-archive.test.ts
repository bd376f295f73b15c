/**
 * `tapedeck compact` (storage/compact-archive.ts): sealed files replaced by their compaction
 * with no server running. Every batch must read back as it was, verify must pass, a second
 * run must find nothing to do, a directory a server records into must be refused, and a
 * kill -9 at any instant of a run (seeded) must leave an archive that reads back whole and
 * verifies clean, which a later run then compacts.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { compactArchive, COMPACT_TMP_SUFFIX } from '../storage/compact-archive.js';
import { verifyArchive } from '../storage/verify.js';
import { buildSidecar, SIDECAR_DIR, SIDECAR_SUFFIX } from '../storage/series-index/build.js';
import type { Batch, Update } from '../protocol/value.js';
import { randomBatches, rng } from './helpers/workload.js';
import { tapedeckArgs } from './helpers/built.js';
import { tapedeck } from './helpers/cli.js';
import { plain, readArchive as readRecorded } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

/** Three sealed files and an open one; `numeric` adds a poll of 400 counters a batch. */
async function recordFiles(dir: string, seed: number, numeric: boolean): Promise<void> {
  const a = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 256 * 1024 });
  const r = rng(seed);
  const counters = Array.from({ length: 400 }, () => Math.floor(r() * 1e6));
  let ts = 1_700_000_000_000_000;
  for (let f = 0; f < 4; f++) {
    for (const b of randomBatches(seed + f, 300, { paths: 60, maxUpdates: 10, startTs: ts })) {
      const updates: Update[] = [...b.updates];
      if (numeric) {
        for (let i = 0; i < counters.length; i++) {
          counters[i] = (counters[i] as number) + Math.floor(r() * 1000);
          updates.push([`/poll/if-${i}/octets`, counters[i] as number]);
        }
      }
      ts = b.ts;
      a.writer!.append(updates, ts);
      await a.writer!.flush();
    }
    if (f < 3) await a.writer!.rotate();
  }
  await a.close();
}

/** Every committed batch, as plain values. */
const readArchive = async (dir: string): Promise<Batch[]> => plain(await readRecorded(dir));

describe('tapedeck compact', () => {
  it('compacts every sealed file, keeps every batch, and finds nothing to do the second time', async () => {
    const dir = await tmpDir();
    await recordFiles(dir, 5, true);
    const want = await readArchive(dir);
    // Each sealed file with its per-series sidecar, as a server builds them.
    const w = await Archive.open(dir, { flushIntervalMs: 0 });
    for (const f of w.fileList.all().filter((x) => x.sealed)) await buildSidecar(w, f);
    await w.close();
    expect((await readdir(join(dir, SIDECAR_DIR))).filter((n) => n.endsWith(SIDECAR_SUFFIX)).length).toBe(3);
    const files = await compactArchive(dir);
    const done = files.filter((f) => f.skipped === undefined);
    expect(done.length).toBe(3);
    // The old sidecars described the old blocks: gone, for a server to build anew.
    expect((await readdir(join(dir, SIDECAR_DIR))).filter((n) => n.endsWith(SIDECAR_SUFFIX))).toEqual([]);
    expect(files.find((f) => f.skipped === 'open file')).toBeDefined();
    for (const f of done) {
      expect(f.deltasAfter).toBeLessThan(f.deltasBefore);
      expect(f.after).toBeLessThan(f.before * 0.8);
    }
    expect(await readArchive(dir)).toStrictEqual(want);
    const v = await verifyArchive(dir);
    expect(v.ok, JSON.stringify(v.problems)).toBe(true);
    const again = await compactArchive(dir);
    expect(again.every((f) => f.skipped !== undefined)).toBe(true);
    // Sidecars of the compacted files build and verify.
    const s = await Archive.open(dir, { flushIntervalMs: 0 });
    for (const f of s.fileList.all().filter((x) => x.sealed)) await buildSidecar(s, f);
    await s.close();
    const vs = await verifyArchive(dir);
    expect(vs.ok, JSON.stringify(vs.problems)).toBe(true);
    // A server opens it and records on.
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    a.writer!.append([['/after', 1]], a.lastTs + 1);
    await a.writer!.flush();
    await a.close();
    const after = await readArchive(dir);
    expect(after.slice(0, want.length)).toStrictEqual(want);
    expect(after.length).toBe(want.length + 1);
  });

  it('throws away a compaction that saves too little, and does not try it again', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    const r = rng(11);
    // Random doubles: larger blocks hardly shrink them.
    for (let b = 0; b < 2000; b++) {
      const updates: Update[] = Array.from({ length: 50 }, (_, i) => [`/noise/${i}`, (r() - 0.5) * 1e12 * r()] as Update);
      a.writer!.append(updates, 1_700_000_000_000_000 + b * 1000);
      if (b % 3 === 0) await a.writer!.flush();
    }
    await a.writer!.rotate();
    await a.close();
    const want = await readArchive(dir);
    const [first] = await compactArchive(dir);
    expect(first?.skipped).toMatch(/^saves too little/);
    expect(first?.after).toBe(first?.before);
    expect((await readdir(dir)).some((n) => n.endsWith(COMPACT_TMP_SUFFIX))).toBe(false);
    const [again] = await compactArchive(dir);
    expect(again?.skipped).toBe('declined before: saves too little');
    expect(await readArchive(dir)).toStrictEqual(want);
  });

  it('refuses a directory a server records into', async () => {
    const dir = await tmpDir();
    await recordFiles(dir, 6, false);
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    try {
      await expect(compactArchive(dir)).rejects.toMatchObject({ code: 'TPD_ARCHIVE_LOCKED' });
    } finally {
      await a.close();
    }
    const r = await tapedeck('compact', dir, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ compacted: 3 });
  });

  it('survives kill -9 at any instant of a run', async () => {
    const seed = scheduleSeed('COMPACT_KILL_SEED', 'compact kill');
    const r = rng(seed);
    const dir = await tmpDir();
    await recordFiles(dir, seed, true);
    const want = await readArchive(dir);
    // How long a whole run takes here, on a copy of the same archive.
    const probe = await tmpDir();
    await recordFiles(probe, seed, true);
    const t0 = performance.now();
    expect((await tapedeck('compact', probe)).code).toBe(0);
    const runMs = performance.now() - t0;
    for (let round = 0; round < 6; round++) {
      const delay = Math.floor(r() * runMs);
      const child = spawn(process.execPath, tapedeckArgs('compact', dir), { stdio: 'ignore' });
      // Listened to first: a run may end before the kill.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill('SIGKILL');
      await exited;
      const left = (await readdir(dir)).filter((n) => n.endsWith(COMPACT_TMP_SUFFIX)).length;
      console.log(`compact kill round ${round}: after ${delay} of ${Math.round(runMs)} ms, ${left} .compact.tmp left`);
      expect(await readArchive(dir), `round ${round}, kill after ${delay} ms`).toStrictEqual(want);
      const v = await verifyArchive(dir);
      expect(v.ok, `round ${round}, kill after ${delay} ms: ${JSON.stringify(v.problems)}`).toBe(true);
    }
    const files = await compactArchive(dir);
    expect(files.filter((f) => f.skipped === 'open file').length).toBe(1);
    expect(files.every((f) => f.skipped === 'open file' || f.skipped === 'already compact' || f.deltasAfter < f.deltasBefore)).toBe(true);
    expect((await readdir(dir)).some((n) => n.endsWith(COMPACT_TMP_SUFFIX))).toBe(false);
    expect(await readArchive(dir)).toStrictEqual(want);
    expect((await verifyArchive(dir)).ok).toBe(true);
  }, 300_000);
});
