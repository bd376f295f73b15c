/**
 * A batch at 0 µs (the first time the time contract takes) acknowledged durable before its
 * commit. The writer's durable mark started at 0, which also stands for "no batch": into an
 * empty archive, whenDurable(0) resolved at once, so a push with ack=durable at 0 µs was
 * answered before anything was on disk (with no flush timer, never written at all; a kill
 * then lost it). Now the mark starts below every time (storage/durability.ts NOTHING_DURABLE).
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { tmpDir } from './helpers/tmp.js';
import { readAll } from './helpers/replay.js';
import { pino } from 'pino';
import { request } from 'undici';
import { startServer as startTapedeck } from '../server/main.js';
import { resolveConfig } from '../server/config.js';

/** The batches another process would find on disk now (a read-only open sees only what is committed). */
async function onDisk(dir: string): Promise<number> {
  const r = await Archive.open(dir, { readonly: true });
  try {
    return (await readAll(r.cursor())).length;
  } finally {
    await r.close();
  }
}

describe('a batch at 0 µs, acknowledged durable', () => {
  it('whenDurable(0) resolves only once the batch is committed', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    try {
      const w = a.writer!;
      await expect(w.whenDurable(0)).resolves.toBeUndefined(); // nothing appended: nothing to wait for
      w.append([['/zero', 1]], 0);
      await w.whenDurable(0);
      expect(await onDisk(dir)).toBe(1);
    } finally {
      await a.close();
    }
  });

  it('a push at 0 µs with ack=durable is on disk when it is answered', async () => {
    const dir = await tmpDir();
    const cfg = resolveConfig({
      archive_directory: dir,
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: 'p', type: 'push' }],
    });
    const srv = await startTapedeck(cfg, { logger: pino({ level: 'silent' }) });
    try {
      const res = await request(`${srv.url}/api/v1/ingest?ack=durable`, { method: 'POST', body: '{"ts":0,"updates":{"/zero":7}}\n', headers: { 'content-type': 'application/x-ndjson' } });
      const text = await res.body.text();
      expect(res.statusCode, text).toBeLessThan(300);
      expect(await onDisk(dir)).toBe(1);
    } finally {
      await srv.close();
    }
  });
});
