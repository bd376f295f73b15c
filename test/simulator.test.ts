import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { Archive } from '../storage/index.js';
import { FABRIC_METRICS } from '../server/sim/fabric.js';
import { Simulator, type Snapshot } from '../server/sim/simulator.js';
import type { BatchEvent } from '../server/recorder.js';
import type { PollEvent } from '../server/sources/source.js';
import { rig, waitFor } from './helpers/upstreams.js';
import { tapedeckArgs } from './helpers/built.js';


/** The state the archive holds at a snapshot's time must be exactly the matrix served. */
async function expectArchiveHolds(dir: string, snaps: Snapshot[]): Promise<void> {
  const a = await Archive.open(dir, { readonly: true });
  try {
    for (const snap of snaps) {
      const c = a.cursor({ filter: ['/fabric/**'] });
      await c.seek({ ts: snap.tsMs * 1000 });
      const want = new Map<string, number>();
      for (const [sw, vals] of snap.rows) FABRIC_METRICS.forEach((m, i) => want.set(`/fabric/${sw}/${m}`, vals[i] as number));
      expect(await c.state()).toEqual(want);
    }
  } finally {
    await a.close();
  }
}

describe('simulator', () => {
  it('serves a CSV matrix with ETag, X-Snapshot-Ts and 304, and what it served is what the archive holds', async () => {
    const sim = await Simulator.start({ switches: 8, manual: true });
    const r = await rig();
    const s = r.add('csv-matrix', 'fabric', { url: `${sim.url}/counters`, prefix: '/fabric', interval: '5ms' });
    const snaps: Snapshot[] = [];
    let recorded = waitFor<BatchEvent>(r.recorder, 'batch', (e) => e.ts === sim.snapshot.tsMs * 1000);
    s.start();
    for (let i = 0; i < 6; i++) {
      await recorded;
      snaps.push(sim.snapshot);
      if (i < 5) {
        sim.tick();
        recorded = waitFor<BatchEvent>(r.recorder, 'batch', (e) => e.ts === sim.snapshot.tsMs * 1000);
      }
    }
    await waitFor<PollEvent>(s, 'poll', (e) => e.ok && e.notModified);
    await r.close();
    await sim.close();
    expect(sim.stats.notModified).toBeGreaterThan(0);
    expect(snaps[0]?.csv.split('\n')[0]).toBe(`switch_id,${FABRIC_METRICS.join(',')}`);
    expect(snaps[0]?.rows.size).toBe(8);
    await expectArchiveHolds(r.dir, snaps);
  });

  it('injects 500s and slowness; the poller recovers and still records every snapshot', async () => {
    const sim = await Simulator.start({ switches: 4, manual: true, fault500Pct: 100, faultSlowMs: 20 });
    const r = await rig();
    const s = r.add('csv-matrix', 'fabric', { url: `${sim.url}/counters`, prefix: '/fabric', interval: '5ms', backoff_initial: '5ms', backoff_max: '20ms' });
    let failed = 0;
    const twoFailures = waitFor<PollEvent>(s, 'poll', (e) => !e.ok && ++failed >= 2);
    s.start();
    await twoFailures;
    expect(s.health()).toMatchObject({ status: 'failing', batches: 0 });
    sim.setFaults({ fault500Pct: 30 });
    const snaps: Snapshot[] = [];
    for (let i = 0; i < 4; i++) {
      const snap = i === 0 ? sim.snapshot : sim.tick();
      await waitFor<BatchEvent>(r.recorder, 'batch', (e) => e.ts === snap.tsMs * 1000);
      snaps.push(snap);
    }
    await r.close();
    await sim.close();
    expect(sim.stats.errors).toBeGreaterThanOrEqual(2);
    expect(s.health().failures).toBeGreaterThanOrEqual(2);
    await expectArchiveHolds(r.dir, snaps);
  });

  it('serves twin-like flow and graph JSON that http-json records', async () => {
    const sim = await Simulator.start({ switches: 16, manual: true });
    const r = await rig();
    const flows = r.add('http-json', 'flows', { url: `${sim.url}/ndt/get_detected_flows`, path: '/twin/flows', interval: '1h' });
    const graph = r.add('http-json', 'graph', { url: `${sim.url}/ndt/get_graph_data`, path: '/twin/graph', mode: 'leaves', interval: '1h' });
    const both = Promise.all([waitFor(flows, 'poll'), waitFor(graph, 'poll')]);
    flows.start();
    graph.start();
    await both;
    const doc = r.recorder.latest.get('/twin/flows') as { flows: Array<{ path: string[] }> };
    expect(doc.flows.length).toBe(16);
    expect(doc.flows[0]?.path).toHaveLength(3);
    // 2 spines x 14 leaves = 28 links, 5 fields each; 16 nodes, 4 fields each.
    const graphPaths = [...r.recorder.latest.keys()].filter((p) => p.startsWith('/twin/graph/'));
    expect(graphPaths).toHaveLength(28 * 5 + 16 * 4);
    expect(r.recorder.latest.get('/twin/graph/edges/0/capacity_gbps')).toBe(100);
    await r.close();
    await sim.close();
  });

  it('tapedeck simulate serves on its own port and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, tapedeckArgs('simulate', '--port', '0', '--switches', '3', '--interval', '1h'), { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
    const { counters } = JSON.parse(first) as { counters: string };
    const res = await request(counters);
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-snapshot-ts']).toMatch(/^\d{13}$/);
    expect(text.trim().split('\n')).toHaveLength(4);
    const again = await request(counters, { headers: { 'if-none-match': res.headers.etag as string } });
    await again.body.dump();
    expect(again.statusCode).toBe(304);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
