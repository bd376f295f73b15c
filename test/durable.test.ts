/**
 * Durable acknowledgements under kill -9: a real server in a child process, concurrent
 * pushers with ack=durable each pushing numbered batches, SIGKILL at seeded random moments,
 * and after each kill every acknowledged batch must be in the archive, once, in order.
 * Seed: DURABLE_SEED (printed).
 */
import { describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { startRecordingChild, type RecordingChild } from './helpers/recording-child.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const ROUNDS = 8;
const PUSHERS = 6;

function startChild(dir: string): Promise<RecordingChild> {
  return startRecordingChild(dir, 'push');
}

/** Every value pushed at `/d/p<k>`, in archive order, per pusher. */
async function pushedValues(dir: string, pushers: number): Promise<number[][]> {
  const out: number[][] = Array.from({ length: pushers }, () => []);
  for (const b of await readArchive(dir)) {
    for (const [path, v] of b.updates) {
      const k = Number(path.slice('/d/p'.length));
      out[k]?.push(v as number);
    }
  }
  return out;
}

/**
 * One pusher: posts bodies of 1-4 numbered lines, one after another, from `from` on, until
 * a request fails (the server was killed). Returns how many batches were acknowledged.
 */
async function pusher(url: string, k: number, from: number, ack: string, r: () => number, onAck: () => void): Promise<number> {
  const pool = new Pool(url, { connections: 1 });
  let next = from;
  try {
    for (;;) {
      const lines = 1 + Math.floor(r() * 4);
      const body = Array.from({ length: lines }, (_, j) => JSON.stringify({ updates: { [`/d/p${k}`]: next + j } })).join('\n');
      const res = await pool.request({ path: `/api/v1/ingest?ack=${ack}`, method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
      const json = (await res.body.json()) as { accepted_lines?: number; ack?: string };
      if (res.statusCode !== 200 || json.accepted_lines !== lines || json.ack !== ack) throw new Error(`pusher ${k}: answer ${res.statusCode} ${JSON.stringify(json)}`);
      next += lines;
      onAck();
    }
  } catch (err) {
    // Only the kill ends a pusher: a refused or reset connection.
    const code = (err as { code?: string }).code;
    if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET' && code !== 'UND_ERR_CLOSED') throw err;
    return next - from;
  } finally {
    await pool.destroy().catch(() => undefined);
  }
}

describe('durable acknowledgements', () => {
  it(`keep every batch acknowledged with ack=durable through ${ROUNDS} SIGKILLs at random moments, once and in order`, async () => {
    const seed = Number(process.env.DURABLE_SEED ?? Date.now() % 100_000);
    console.log(`durable.test seed ${seed} (DURABLE_SEED=${seed} to replay)`);
    const r = rng(seed);
    const dir = await tmpDir('tapedeck-durable-');
    const recorded = Array.from({ length: PUSHERS }, () => 0);
    let ackedTotal = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const srv = await startChild(dir);
      // Kill once a random number of acknowledgements have arrived, plus a random delay:
      // mid-request, mid-commit or between requests.
      const killAfterAcks = 1 + Math.floor(r() * 40);
      const killDelayMs = Math.floor(r() * 20);
      let acks = 0;
      const kill = (): void => {
        if (++acks === killAfterAcks) setTimeout(() => srv.proc.kill('SIGKILL'), killDelayMs);
      };
      const acked = await Promise.all(recorded.map((from, k) => pusher(srv.url, k, from, 'durable', rng(seed * 31 + round * 7 + k), kill)));
      expect(await srv.exited).toBe('SIGKILL');
      const values = await pushedValues(dir, PUSHERS);
      for (let k = 0; k < PUSHERS; k++) {
        const got = values[k] as number[];
        const where = `seed ${seed}, round ${round}, pusher ${k}`;
        // Exactly once and in order: the values are 0, 1, 2, ... with no gap or repeat.
        expect(got.every((v, i) => v === i), `${where}: ${JSON.stringify(got.slice(0, 50))}`).toBe(true);
        expect(got.length, `${where}: acknowledged batches lost`).toBeGreaterThanOrEqual((recorded[k] as number) + (acked[k] as number));
        recorded[k] = got.length;
        ackedTotal += acked[k] as number;
      }
    }
    expect(ackedTotal).toBeGreaterThan(ROUNDS);
  }, 240_000);

  it('with ack=memory and no timed flush, a SIGKILL takes batches that were acknowledged', async () => {
    const dir = await tmpDir('tapedeck-memory-');
    const srv = await startChild(dir);
    const pool = new Pool(srv.url, { connections: 1 });
    for (let i = 0; i < 5; i++) {
      const res = await pool.request({ path: '/api/v1/ingest?ack=memory', method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ updates: { '/d/p0': i } }) });
      expect(await res.body.json()).toMatchObject({ ack: 'memory', accepted_lines: 1 });
    }
    await pool.destroy();
    srv.proc.kill('SIGKILL');
    await srv.exited;
    // Acknowledged from memory, never committed: gone. (The same five with ack=durable are kept above.)
    expect((await pushedValues(dir, 1))[0]).toEqual([]);
  }, 60_000);
});
