/**
 * Damage to the workspace file (bookmarks and layouts): every byte changed (seeded masks),
 * zeroed, cut at every length, a file of zeros, and an older copy or another archive's file
 * in its place. Each time the workspace opens (never throws), and what it holds is either
 * exactly a workspace that was written or empty with the damaged file moved aside byte for
 * byte and a warning: a damaged note or layout is never shown as if it were recorded.
 *
 * DAMAGE_WORKSPACE_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WORKSPACE_FILE, WorkspaceStore } from '../server/workspace/store.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

const SEED = scheduleSeed('DAMAGE_WORKSPACE_SEED', 'damage-workspace');

function contents(s: WorkspaceStore): string {
  return JSON.stringify({ bookmarks: s.listBookmarks(), layouts: s.listLayouts() });
}

/** A workspace with seeded notes, ranges and layouts; returns the file's bytes and what it holds. */
async function written(dir: string, r: () => number, n: number): Promise<{ bytes: Buffer; holds: string }> {
  await mkdir(dir, { recursive: true });
  const s = await WorkspaceStore.open(dir);
  const word = (): string => ['link', 'down', 'ä', '🛰', 'flap "quoted"', 'x\\y', ''][Math.floor(r() * 7)]!;
  for (let i = 0; i < n; i++) {
    const ts = 1_700_000_000_000_000 + Math.floor(r() * 1e12);
    await s.addBookmark({ ts, ...(r() < 0.5 ? { end: ts + Math.floor(r() * 1e9) } : {}), note: `${word()} ${i} ${word()}`, url: `pos=${ts}&speed=${i}` }, ts + 1);
  }
  await s.putLayout(`layout ${word()}`, { panels: [{ path: `/fabric/sw-${Math.floor(r() * 100)}/cpu`, w: Math.floor(r() * 12) }], n: r() < 0.5 ? 0.1 : 1e21 }, 5);
  return { bytes: await readFile(join(dir, WORKSPACE_FILE)), holds: contents(s) };
}

interface Outcome {
  holds: string;
  warned: number;
  aside: Buffer[];
}

async function openDamaged(dir: string, bytes: Buffer): Promise<Outcome> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, WORKSPACE_FILE), bytes);
  let warned = 0;
  const s = await WorkspaceStore.open(dir, { warn: () => warned++ });
  const aside: Buffer[] = [];
  for (const n of await readdir(dir)) {
    if (!n.startsWith(`${WORKSPACE_FILE}.damaged-`)) continue;
    aside.push(await readFile(join(dir, n)));
    await rm(join(dir, n));
  }
  return { holds: contents(s), warned, aside };
}

const EMPTY = JSON.stringify({ bookmarks: [], layouts: [] });

describe('a damaged workspace file', () => {
  it('is read exactly as written or moved aside whole (every byte changed, zeroed, cut at every length, zeros, another file)', async () => {
    const r = rng(SEED);
    const base = await tmpDir('tapedeck-ws-damage-');
    const mine = await written(join(base, 'mine'), r, 3 + Math.floor(r() * 5));
    const older = await written(join(base, 'older'), r, 1 + Math.floor(r() * 3));
    const dir = join(base, 'work');
    const valid = new Set([mine.holds, older.holds]);
    let detected = 0;
    let n = 0;
    const check = async (what: string, bytes: Buffer): Promise<void> => {
      n++;
      const o = await openDamaged(dir, bytes);
      const where = `${what} (seed ${SEED})`;
      if (o.holds === EMPTY) {
        detected++;
        expect(o.warned, `${where}: moved aside without a warning`).toBeGreaterThan(0);
        expect(o.aside.some((x) => x.equals(bytes)), `${where}: the damaged file was not kept`).toBe(true);
        return;
      }
      expect(valid.has(o.holds), `${where}: read back as something never written: ${o.holds.slice(0, 200)}`).toBe(true);
    };
    const f = mine.bytes;
    for (let i = 0; i < f.length; i++) {
      const flipped = Buffer.from(f);
      flipped[i] = (flipped[i]! ^ (1 + Math.floor(r() * 255))) & 0xff;
      await check(`byte ${i} xor`, flipped);
      const zeroed = Buffer.from(f);
      zeroed[i] = zeroed[i] === 0 ? 0x20 : 0;
      await check(`byte ${i} zeroed`, zeroed);
    }
    for (let len = 0; len < f.length; len++) await check(`cut at ${len}`, f.subarray(0, len));
    await check('a file of zeros', Buffer.alloc(f.length));
    await check('an older copy', older.bytes);
    // Every single-byte change to a note, URL or layout is found: only changes that keep the
    // JSON's value (whitespace at the end) may read as written.
    expect(detected, `only ${detected} of ${n} damages detected`).toBeGreaterThanOrEqual(2 * f.length - 4 + f.length - 1);
    // A workspace written before the CRC32C (no "crc" member) is still read.
    const legacy = `${JSON.stringify({ version: 1, bookmarks: [{ id: 'a', ts: 1, note: 'crc', createdTs: 2, url: '' }], layouts: [] })}\n`;
    const o = await openDamaged(dir, Buffer.from(legacy));
    expect(o.warned).toBe(0);
    expect(JSON.parse(o.holds)).toMatchObject({ bookmarks: [{ id: 'a', note: 'crc' }] });
  });
});
