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
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const KILLS = 8;
const SERIES = 40;
/** Requests acknowledged in a round before its kill is timed, with rotations (80 KB or more of 200 series' samples). */
const ROTATING_WARM_REQUESTS = 60;
const SCRAPES_PER_REQUEST = 4;
const INTERVAL_MS = 15_000;
const T0_MS = 1_700_000_000_000;

function startChild(dir: string, rotateSize: number | undefined): Promise<RecordingChild> {
  return startRecordingChild(dir, 'remote_write', '5ms', rotateSize);
}

/** Request r: scrapes [r * SCRAPES_PER_REQUEST, (r + 1) * SCRAPES_PER_REQUEST) of every series. */
function request(r: number, value: (series: number, scrape: number) => number, series = SERIES): PromSeries[] {
  return Array.from({ length: series }, (_v, s) => ({
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
  // With rotate_size, files rotate between the kills and the server compacts each in the
  // background (storage/live-compact.ts): kills land while a compaction is written and swapped.
  for (const rotateSize of [undefined, 65_536]) {
  it(`keeps every sample once through ${KILLS} SIGKILLs, retries of half-recorded requests included${rotateSize === undefined ? '' : ', files rotating and compacted by the server meanwhile'}`, async () => {
    const seed = scheduleSeed('PROM_KILL_SEED', 'prom-remote-write-kill');
    // With rotations, more series: several files of rotate_size fill between the kills.
    const series = rotateSize === undefined ? SERIES : 5 * SERIES;
    const r = rng(seed);
    const values = new Map<string, number>();
    const value = (s: number, scrape: number): number => {
      const key = `${s}/${scrape}`;
      let v = values.get(key);
      if (v !== undefined) return v;
      // With rotations, counters as exporters give (a compaction saves enough on them to be
      // kept; on random doubles it is declined and the file stays as recorded).
      const prior = scrape > 0 ? values.get(`${s}/${scrape - 1}`) : undefined;
      v = rotateSize !== undefined && prior !== undefined ? prior + Math.floor(r() * 100) : Math.round(r() * 1e6) / 100;
      values.set(key, v);
      return v;
    };
    const dir = await tmpDir();
    let child = await startChild(dir, rotateSize);
    const refused: string[] = [];
    let retries = 0;
    let req = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      // Kill a seeded moment into this round: some requests are acknowledged before it, one is cut.
      // With rotations, the moment is counted from the round's ROTATING_WARM_REQUESTS-th
      // acknowledgement: a file of rotate_size has filled by then, and it is sealed and
      // compacted around the kill.
      let timer: NodeJS.Timeout | undefined;
      const arm = (): void => {
        const victim = child;
        timer = setTimeout(() => victim.proc.kill('SIGKILL'), rotateSize === undefined ? 20 + Math.floor(r() * 150) : Math.floor(r() * 300));
      };
      if (rotateSize === undefined) arm();
      let acked = 0;
      const pool = new Pool(child.url, { connections: 1 });
      try {
        for (;;) {
          if (rotateSize !== undefined && acked++ === ROTATING_WARM_REQUESTS) arm();
          const body = snappyLiteral(encodeWriteRequest(request(req, value, series)));
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
      child = await startChild(dir, rotateSize);
    }
    // The last request cut by a kill, and one more, to the server after the last restart.
    const pool = new Pool(child.url, { connections: 1 });
    for (const last of [req, req + 1]) {
      const res = await pool.request({ path: '/api/v1/write', method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' }, body: snappyLiteral(encodeWriteRequest(request(last, value, series))) });
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
      for (let s = 0; s < series; s++) {
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
    const v = await verifyArchive(dir);
    expect(v.ok, `seed ${seed}: ${JSON.stringify(v.problems)}`).toBe(true);
    if (rotateSize !== undefined) {
      // Each request commits a block of its scrapes (durable acks): a block of more batches is a compaction's.
      const a = await Archive.open(dir, { readonly: true });
      const sealed = a.files.filter((f) => f.sealed);
      const compacted = sealed.filter((f) => a.table(f).deltas.some((i) => a.table(f).batches(i) > SCRAPES_PER_REQUEST));
      await a.close();
      console.log(`prom-remote-write-kill: ${sealed.length} rotated files, ${compacted.length} compacted by the server`);
      expect(sealed.length, `seed ${seed}`).toBeGreaterThan(1);
      expect(compacted.length, `seed ${seed}`).toBeGreaterThan(0);
    }
  }, 300_000);
  }
});
