/**
 * History text of a batch of very many updates (a batch may hold batchUpdatesMax, a million):
 * it was rendered as one chunk, whatever historyChunkCharsTarget says (a million updates:
 * 50 M characters, about a second on the event loop in one piece). Chunks now end within a
 * batch too, and the loop turns while it is written; the text is the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Value } from '../protocol/value.js';
import { valueFromCsvCell, valueFromJson } from '../protocol/value-json.js';
import { historyChunks } from '../server/history.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { Archive } from '../storage/index.js';
import { tmpDir } from './helpers/tmp.js';
import { csvRows } from './helpers/value-outputs.js';

const T0 = 1_763_000_000_000_000;
const N = 200_000;
const valueOf = (i: number): Value => (i % 3 === 0 ? `s,"${i}"\n` : i % 3 === 1 ? i * 1.5 : -0);

let archive: Archive;

beforeAll(async () => {
  archive = await Archive.open(await tmpDir('tapedeck-chunks-'), { flushIntervalMs: 0 });
  const updates: Array<[string, Value]> = [];
  for (let i = 0; i < N; i++) updates.push([`/big/sw-${i % 100}/if-${i}`, valueOf(i)]);
  archive.writer!.append(updates, T0);
  archive.writer!.append([['/small', 1]], T0 + 1);
  await archive.writer!.flush();
});

afterAll(async () => {
  await archive?.close();
});

describe('history text of a batch of 200 000 updates', () => {
  for (const format of ['ndjson', 'csv'] as const) {
    it(`comes in chunks of about historyChunkCharsTarget, the event loop turning, the same text (${format})`, async () => {
      let turns = 0;
      let counting = true;
      const count = (): void => {
        turns++;
        if (counting) setImmediate(count);
      };
      const chunks: string[] = [];
      for await (const c of historyChunks(archive, { globs: ['/**'], fromUs: 0, toUs: Number.MAX_SAFE_INTEGER, format })) {
        if (chunks.length === 0) setImmediate(count);
        chunks.push(c as string);
      }
      counting = false;
      const longest = Math.max(...chunks.map((c) => c.length));
      expect(longest).toBeLessThan(SERVER_LIMITS.historyChunkCharsTarget + 1024);
      expect(chunks.length).toBeGreaterThan(50);
      expect(turns).toBeGreaterThan(N / SERVER_LIMITS.historyUpdatesPerYield / 2);
      const text = chunks.join('');
      if (format === 'ndjson') {
        const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { ts: number; updates: Record<string, unknown> });
        expect(lines.map((l) => l.ts)).toEqual([T0, T0 + 1]);
        const got = Object.entries(lines[0]!.updates);
        expect(got).toHaveLength(N);
        for (const i of [0, 1, 2, 4097, N - 1]) expect(Object.is(valueFromJson(got[i]![1], got[i]![0]), valueOf(i))).toBe(true);
      } else {
        const rows = csvRows(text);
        expect(rows[0]).toEqual(['ts', 'time', 'path', 'value']);
        expect(rows.length).toBe(N + 2);
        for (const i of [0, 1, 2, 4097, N - 1]) expect(Object.is(valueFromCsvCell(rows[i + 1]![3]!, rows[i + 1]![2]!), valueOf(i))).toBe(true);
      }
    }, 60_000);
  }
});
