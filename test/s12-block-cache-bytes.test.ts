/**
 * The shared block cache bounded in bytes too (storage/block-cache.ts,
 * STORAGE_LIMITS.decodedCacheBytesMax). Counted in updates only, it held up to a million
 * decoded updates whatever they weigh: 200 blocks of one 1 MB string each were all kept
 * after a history read, and a server with a 160 MB heap died of it mid-read (reported by
 * the history audit helper). Now the read streams through, the server keeps answering.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startArchiveServer, type ChildServer } from './helpers/child-server.js';

const T0 = 1_763_000_000_000_000;
let server: ChildServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('block cache', () => {
  it('a history read of 200 blocks of a 1 MB string each does not hold them all: a 160 MB heap reads them through', async () => {
    // One path (the writer keeps its latest value only), each string its own block (past
    // blockRawBytesTarget); 'x' runs compress, so the
    // archive is small on disk while every block decodes to a 1 MB string.
    server = await startArchiveServer(`for (let b = 0; b < 200; b++) archive.writer.append([['/big/s', b + ':' + 'x'.repeat(1_000_000)]], ${T0} + b * 1000);`, {
      nodeArgs: ['--max-old-space-size=160'],
    });
    const res = await request(`${server.url}/api/v1/history?glob=${encodeURIComponent('/big/**')}`);
    expect(res.statusCode).toBe(200);
    let lines = 0;
    let tail = '';
    for await (const chunk of res.body) {
      const text = tail + String(chunk);
      const parts = text.split('\n');
      tail = parts.pop() as string;
      lines += parts.length;
    }
    expect(tail).toBe('');
    expect(lines).toBe(200);
    expect(server.exitCode).toBeUndefined();
    expect(await server.healthAnswers(5_000)).toBe(true);
  }, 180_000);
});
