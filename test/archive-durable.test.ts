import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { tmpDir } from './helpers/tmp.js';
import { plain, readAll } from './helpers/replay.js';

const opts = { flushIntervalMs: 0, imageFrequencyBytes: 64 * 1024 };
const defaultDiskFull = {
  retryMs: STORAGE_LIMITS.diskFullRetryMs, retryMaxMs: STORAGE_LIMITS.diskFullRetryMaxMs,
  bufferBytesMax: STORAGE_LIMITS.diskFullBufferBytesMax, ackWaitMs: STORAGE_LIMITS.diskFullAckWaitMs,
};

/** Timestamps of every batch a fresh read-only open sees: what is on disk and committed. */
async function onDisk(dir: string): Promise<number[]> {
  const r = await Archive.open(dir, { readonly: true });
  try {
    return plain(await readAll(r.cursor())).map((b) => b.ts);
  } finally {
    await r.close();
  }
}

/** 'now' when `p` is already settled, 'later' when it needs another turn of the event loop. */
async function settledNow(p: Promise<unknown>): Promise<'now' | 'later'> {
  return Promise.race([p.then(() => 'now' as const), new Promise<'later'>((r) => setImmediate(() => r('later')))]);
}

describe('whenDurable', () => {
  it('resolves in commit order, each batch committed on disk by the time its promise resolves', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, opts);
    const w = a.writer!;
    const order: number[] = [];
    let diskAtT1: number[] = [];
    const t1 = w.append([['/a', 1]], 1000);
    const p1 = w.whenDurable(t1).then(async () => {
      order.push(t1);
      diskAtT1 = await onDisk(dir);
    });
    await new Promise((r) => setImmediate(r)); // the group commit for t1 is sealed
    const t2 = w.append([['/a', 2]], 2000);
    const p2 = w.whenDurable(t2).then(() => void order.push(t2));
    await Promise.all([p1, p2]);
    expect(order).toEqual([t1, t2]);
    expect(diskAtT1).toContain(t1);
    expect(await onDisk(dir)).toEqual([t1, t2]);
    await a.close();
  });

  it('serves 100 concurrent durable pushers with a few shared commits and blocks, not one each', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, opts);
    const w = a.writer!;
    const commits0 = w.stats.commits;
    const blocks0 = a.totals().blocks;
    const rounds = 5;
    const pushers = 100;
    const acked: number[] = [];
    await Promise.all(Array.from({ length: pushers }, async (_, p) => {
      for (let r = 0; r < rounds; r++) {
        const ts = w.append([[`/p/${p}`, r]]);
        await w.whenDurable(ts);
        acked.push(ts);
      }
    }));
    const commits = w.stats.commits - commits0;
    const blocks = a.totals().blocks - blocks0;
    // One seal and one commit per round (each round's 100 appends come before the next
    // group commit starts); a commit per waiter would be 500.
    expect(commits).toBeGreaterThanOrEqual(rounds);
    expect(commits).toBeLessThanOrEqual(2 * rounds);
    expect(blocks).toBeLessThanOrEqual(2 * rounds);
    expect(acked).toHaveLength(rounds * pushers);
    expect(new Set(await onDisk(dir))).toEqual(new Set(acked));
    await a.close();
  });

  it('resolves at once, without a commit, for a batch already committed', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, opts);
    const w = a.writer!;
    const t = w.append([['/x', 1]], 10);
    await w.flush();
    const commits = w.stats.commits;
    expect(await settledNow(w.whenDurable(t))).toBe('now');
    expect(await settledNow(w.whenDurable(1))).toBe('now'); // older than anything appended
    expect(w.stats.commits).toBe(commits);
    await a.close();
    // After a reopen everything on disk is durable.
    const b = await Archive.open(dir, opts);
    expect(await settledNow(b.writer!.whenDurable(t))).toBe('now');
    await b.close();
  });

  it('refuses a timestamp no batch was appended at', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, opts);
    const w = a.writer!;
    const t = w.append([['/x', 1]], 10);
    await expect(w.whenDurable(t + 1)).rejects.toMatchObject({ code: 'TPD_BAD_ARGUMENT' });
    await expect(w.whenDurable(Number.NaN)).rejects.toMatchObject({ code: 'TPD_BAD_ARGUMENT' });
    await w.whenDurable(t);
    await a.close();
  });

  it('rejects waiters with the writer error when a write fails (not a full disk), and refuses appends after', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, opts);
    const w = a.writer!;
    const errors: unknown[] = [];
    a.on('writer-error', (e) => errors.push(e));
    w.append([['/x', 1]], 10);
    await w.flush();
    // An immutable file refuses writes with EPERM: a real I/O failure that waiting cannot cure.
    const current = join(dir, 'current');
    execFileSync('chattr', ['+i', current]);
    try {
      const ts = w.append([['/x', 'a'.repeat(100)]], 20);
      const waiters = [w.whenDurable(ts), w.whenDurable(ts)];
      for (const p of waiters) await expect(p).rejects.toMatchObject({ code: 'TPD_IO' });
      expect(w.health.state).toBe('failed');
      expect(errors).toHaveLength(1);
      expect(() => w.append([['/x', 2]], 30)).toThrow(expect.objectContaining({ code: 'TPD_IO' }));
      await expect(w.whenDurable(ts)).rejects.toMatchObject({ code: 'TPD_IO' });
    } finally {
      execFileSync('chattr', ['-i', current]);
    }
    await a.close();
    expect(await onDisk(dir)).toEqual([10]);
  });
});

describe('open options', () => {
  it('applies diskFull limits to the writer it starts, and refuses a bad one without keeping the archive locked', async () => {
    const dir = await tmpDir();
    await expect(Archive.open(dir, { ...opts, diskFull: { retryMs: -1 } })).rejects.toMatchObject({ code: 'TPD_BAD_ARGUMENT', message: 'disk-full limit retryMs must be a non-negative number, got -1' });
    const a = await Archive.open(dir, { ...opts, diskFull: { retryMs: 7, ackWaitMs: 50 } });
    expect(a.writer!.diskFullLimits).toEqual({ ...defaultDiskFull, retryMs: 7, ackWaitMs: 50 });
    await a.close();
  });
});
