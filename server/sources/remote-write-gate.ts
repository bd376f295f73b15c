/**
 * The archive as a remote-write request sees it (ArchiveGate, server/sources/remote-write.ts):
 * its last time, a wait for the write queue, and what it already holds of some paths over a
 * short range (read back for a request that may be a retry after a restart).
 */
import { valueList, type Value } from '../../protocol/value.js';
import type { Archive, ArchiveWriter } from '../../storage/index.js';
import { recordedKey, type ArchiveGate } from './remote-write.js';

export function archiveGate(archive: Archive, writer: ArchiveWriter): ArchiveGate {
  return {
    lastTsUs: () => writer.lastTimestamp,
    drained: () => writer.drain(),
    recorded: async (fromUs, toUs, paths, updatesMax) => {
      // Committed first: a cursor reads committed blocks, and what a retry finds recorded is then durable too.
      await writer.flush();
      const c = archive.cursor();
      await c.seek({ ts: fromUs - 1 });
      const held = new Map<string, Value[]>();
      let read = 0;
      for (let b = await c.next(); b && b.ts <= toUs; b = await c.next()) {
        read += b.updates.length;
        if (read > updatesMax) return undefined;
        const ms = Math.floor(b.ts / 1000);
        for (const [path, v] of b.updates) {
          if (!paths.has(path)) continue;
          const key = recordedKey(path, ms);
          // In generic elements (valueList): a `[v]` literal of a number is an array of doubles,
          // which quiets a signalling NaN, and the retry of its sample would then be refused.
          let had = held.get(key);
          if (had === undefined) held.set(key, (had = valueList()));
          had.push(v);
        }
      }
      return held;
    },
  };
}
