/**
 * A seek by time reads and checks its block once: the state at the position and the first
 * batch after it decode the payload the seek read (storage/cursor.ts soughtPayload) instead
 * of reading the block again, and give what a cursor that reads it again gives. Counted on
 * a real archive by wrapping its readPayload (every state and first-batch read of a block
 * goes through it); compared with a cursor placed by batches. test/cursor-seek-times.test.ts checks the values against a full-decode
 * oracle at every kind of instant.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import type { Batch } from '../protocol/value.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const T0 = 1_763_000_000_000_000;

async function archiveOf(batches: number): Promise<string> {
  const dir = await tmpDir('tapedeck-seek-payload-');
  const w = await Archive.open(dir, { imageFrequencyBytes: 64 * 1024 * 1024 });
  const r = rng(5);
  // Polls of 64 paths, 1 s apart: blocks of 256 batches.
  for (let i = 0; i < batches; i++) w.writer!.append(Array.from({ length: 64 }, (_, j) => [`/p/m${j}`, Math.round(r() * 1000) / 10] as [string, number]), T0 + i * 1_000_000);
  await w.close();
  return dir;
}

describe('a seek by time', () => {
  it('reads its block once for the seek, the state and the first batch, inside a block and after its last batch', async () => {
    const a = await Archive.open(await archiveOf(2000), { readonly: true });
    try {
      let reads = 0;
      const readPayload = a.readPayload.bind(a);
      a.readPayload = (...args: Parameters<typeof readPayload>) => {
        reads++;
        return readPayload(...args);
      };
      // Inside block 0 (the state ends there; the first batch is its read by columns), and after
      // block 1's last batch (the state reads block 1, the first batch block 2's start): no
      // read but the seek's, then one of block 2.
      for (const [k, want] of [[100, 0], [512, 1]] as const) {
        const c = a.cursor();
        await c.seek({ ts: T0 + (k - 1) * 1_000_000 });
        reads = 0;
        const state = await c.stateById();
        const first = (await c.next()) as Batch;
        expect(reads, `seek to batch ${k}`).toBe(want);
        expect(first.ts).toBe(T0 + k * 1_000_000);
        // The same as a cursor placed there batch by batch (its state from the blocks it holds).
        const again = a.cursor();
        await again.seek({ batches: k });
        expect(again.pos).toBe(T0 + (k - 1) * 1_000_000);
        expect(await again.stateById()).toEqual(state);
        expect(await again.next()).toEqual(first);
      }
    } finally {
      await a.close();
    }
  });
});
