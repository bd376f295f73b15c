/**
 * Remote write under kill -9, with the sender Prometheus is: a real server in a child process
 * (durable acknowledgements, a 5 ms flush interval so that parts of a request commit between
 * its batches), one sender posting requests of several scrapes in time order, SIGKILL at
 * seeded random moments. Like Prometheus, the sender sends a request again when it got no
 * answer (the connection died with the server) and drops it on a 400. At the end every
 * sample sent must be in the archive exactly once with its exact value: a retry of a request
 * that was recorded, whole or in part, before the kill must neither be refused (its samples
 * would be lost: Prometheus drops what gets a 400) nor recorded twice.
 * Seed: PROM_KILL_SEED (printed).
 */
import { describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { seriesToPath } from '../protocol/prom-path.js';
import { encodeWriteRequest, snappyLiteral, type PromSeries } from './helpers/promql-peers.js';
import { startRecordingChild, type RecordingChild } from './helpers/recording-child.js';
import { readArchive } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const KILLS = 8;
const SERIES = 40;
const SCRAPES_PER_REQUEST = 4;
const INTERVAL_MS = 15_000;
const T0_MS = 1_700_000_000_000;

function startChild(dir: string): Promise<RecordingChild> {
  return startRecordingChild(dir, 'remote_write', '5ms');
}

/** Request r: scrapes [r * SCRAPES_PER_REQUEST, (r + 1) * SCRAPES_PER_REQUEST) of every series. */
function request(r: number, value: (series: number, scrape: number) => number): PromSeries[] {
  return Array.from({ length: SERIES }, (_v, s) => ({
    labels: { __name__: 'kill_test', series: `s${s}` },
    samples: Array.from({ length: SCRAPES_PER_REQUEST }, (_w, j): [number, number] => {
      const scrape = r * SCRAPES_PER_REQUEST + j;
      return [T0_MS + scrape * INTERVAL_MS, value(s, scrape)];
    }),
  }));
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED' || code === 'EPIPE';
}

describe('remote write under kill -9', () => {
  it(`keeps every sample once through ${KILLS} SIGKILLs, retries of half-recorded requests included`, async () => {
    const seed = scheduleSeed('PROM_KILL_SEED', 'prom-remote-write-kill');
    const r = rng(seed);
    const values = new Map<string, number>();
    const value = (s: number, scrape: number): number => {
      const key = `${s}/${scrape}`;
      let v = values.get(key);
      if (v === undefined) values.set(key, (v = Math.round(r() * 1e6) / 100));
      return v;
    };
    const dir = await tmpDir();
    let child = await startChild(dir);
    const refused: string[] = [];
    let retries = 0;
    let req = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      // Kill a seeded moment into this round: some requests are acknowledged before it, one is cut.
      const timer = setTimeout(() => child.proc.kill('SIGKILL'), 20 + Math.floor(r() * 150));
      const pool = new Pool(child.url, { connections: 1 });
      try {
        for (;;) {
          const body = snappyLiteral(encodeWriteRequest(request(req, value)));
          const res = await pool.request({ path: '/api/v1/write', method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' }, body });
          const text = await res.body.text();
          if (res.statusCode === 400) refused.push(`request ${req}: ${text}`);
          else if (res.statusCode !== 204) throw new Error(`request ${req}: ${res.statusCode} ${text}`);
          req++;
        }
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        retries++; // the request in flight is sent again to the restarted server
      } finally {
        clearTimeout(timer);
        await pool.destroy().catch(() => undefined);
      }
      await child.exited;
      child = await startChild(dir);
    }
    // The last request cut by a kill, and one more, to the server after the last restart.
    const pool = new Pool(child.url, { connections: 1 });
    for (const last of [req, req + 1]) {
      const res = await pool.request({ path: '/api/v1/write', method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' }, body: snappyLiteral(encodeWriteRequest(request(last, value))) });
      const text = await res.body.text();
      if (res.statusCode !== 204) refused.push(`request ${last}: ${res.statusCode} ${text}`);
    }
    await pool.destroy();
    const sent = req + 2;
    child.proc.kill('SIGKILL');
    await child.exited;

    expect(refused, `seed ${seed}`).toEqual([]);
    expect(retries, `seed ${seed}: requests cut by a kill`).toBe(KILLS);
    const seen = new Map<string, number[]>();
    for (const b of await readArchive(dir)) {
      const ms = Math.floor(b.ts / 1000);
      for (const [path, v] of b.updates) {
        const key = `${path}@${ms}`;
        seen.set(key, [...(seen.get(key) ?? []), v as number]);
      }
    }
    const missing: string[] = [];
    const wrong: string[] = [];
    for (let scrape = 0; scrape < sent * SCRAPES_PER_REQUEST; scrape++) {
      for (let s = 0; s < SERIES; s++) {
        const key = `${seriesToPath({ name: 'kill_test', labels: { series: `s${s}` } })}@${T0_MS + scrape * INTERVAL_MS}`;
        const got = seen.get(key);
        seen.delete(key);
        if (got === undefined) missing.push(key);
        else if (got.length !== 1 || !Object.is(got[0], value(s, scrape))) wrong.push(`${key}: ${JSON.stringify(got)}, sent ${value(s, scrape)}`);
      }
    }
    expect(missing.slice(0, 5), `seed ${seed}: ${missing.length} samples missing`).toEqual([]);
    expect(wrong.slice(0, 5), `seed ${seed}: ${wrong.length} samples recorded twice or altered`).toEqual([]);
    expect([...seen.keys()].slice(0, 5), `seed ${seed}: samples never sent`).toEqual([]);
  }, 300_000);
});
