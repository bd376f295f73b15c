/**
 * An active paused past its lease (docs/ha.md, "A paused active"). SIGSTOP, not SIGKILL: the
 * process wakes up later believing it is still active. Before, it sent what it had in hand
 * (its queue, a batch recorded on waking) under its old fencing token before its next renewal
 * found the lease taken: messages under fence n after the new active's under n+1. Now the
 * sink sends only while the lease surely holds (3/4 of a TTL after the renewal that began
 * before it), so a woken active sends nothing until a renewal answers; and readers drop a
 * message whose fence is below one already read on its partition (the tail follower of the
 * pair, Tapedeck's Kafka source), so whatever a paused active had already handed to the
 * broker is harmless. Real `tapedeck serve` processes, the run's broker and Redis; the
 * moment of the SIGSTOP comes from a seed (HA_PAUSE_SEED, printed).
 */
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { readTopic } from './helpers/kafka.js';
import { ha, startRecorder, stop, until, useCluster, type Recorder } from './helpers/ha-cluster.js';
import { uniqueName } from './helpers/peers.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { Archive } from '../storage/index.js';

const peers = useCluster({ leaseTtlMs: 1000, simSeed: 11 });

/**
 * The seqs of the batches of stream `fabric` an archive holds (the simulator's snapshot
 * times), up to its first batch of the push source: a later snapshot can be stamped after the
 * push's local time (archive times increase), so its time is no longer its seq.
 */
async function fabricSeqs(dir: string): Promise<number[]> {
  const a = await Archive.open(dir, { readonly: true });
  const out: number[] = [];
  const c = a.cursor();
  for (let b = await c.next(); b; b = await c.next()) {
    if (b.updates.some(([p]) => p.startsWith('/probe/'))) break;
    if (b.updates.some(([p]) => p.startsWith('/fabric/'))) out.push(b.ts);
  }
  await a.close();
  return out;
}

async function push(r: Recorder, value: number): Promise<number> {
  const res = await request(`${r.url}/api/v1/ingest?source=probe`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `{"updates":{"/probe/v":${value}}}\n` });
  await res.body.dump();
  return res.statusCode;
}

describe('an active paused (SIGSTOP) past its lease', () => {
  it('sends nothing under its old fence once it wakes, and readers that fence see every batch once', async () => {
    const p = peers();
    const seed = scheduleSeed('HA_PAUSE_SEED', 'audit11-ha-pause');
    const dir = await tmpDir('tapedeck-audit11-ha-pause-');
    const topic = uniqueName('audit11-ha-pause');
    const cluster = uniqueName('audit11-ha-pause');
    const sources = [
      { name: 'fabric', type: 'csv-matrix', url: `${p.simUrl}/counters`, prefix: '/fabric', interval: '20ms' },
      { name: 'probe', type: 'push' },
    ];
    const a = await startRecorder(p, dir, 'a', topic, cluster, sources);
    await until(async () => (await ha(a)).publishing || undefined, 15_000, 'a active and publishing');
    const b = await startRecorder(p, dir, 'b', topic, cluster, sources);
    await until(async () => (await ha(b)).role === 'standby' || undefined, 15_000, 'b standby');
    const { fencing_token: old } = await ha(a);

    await new Promise((r) => setTimeout(r, 300 + (seed % 900)));
    a.child.kill('SIGSTOP');
    try {
      await until(async () => { const h = await ha(b); return (h.role === 'active' && h.publishing && h.last_published !== null) || undefined; }, 20_000, 'b active and publishing');
      // b publishes for a while; a's probe waits in its socket for it to wake.
      await new Promise((r) => setTimeout(r, 500));
      const probe = push(a, 1);
      await new Promise((r) => setTimeout(r, 100));
      a.child.kill('SIGCONT');
      expect(await probe).toBe(200);
    } finally {
      a.child.kill('SIGCONT');
    }
    await until(async () => (await ha(a)).role === 'standby' || undefined, 10_000, 'a standby after waking');
    await new Promise((r) => setTimeout(r, 500));
    await stop(b);
    await stop(a);

    const msgs = await readTopic(p.broker.kafka, topic);
    // The readers' rule: a message under a fence below one already read on its partition is dropped.
    let high = -1;
    const stale: string[] = [];
    const kept = msgs.filter((m) => {
      const f = Number(m.headers['tpd-fence']);
      if (f < high) {
        stale.push(`${m.headers['tpd-recorder']} fence ${f} seq ${m.headers['tpd-seq']} after fence ${high}`);
        return false;
      }
      high = f;
      return true;
    });
    // The woken active sent nothing after the new one began (its probe included).
    expect(stale).toEqual([]);
    expect(msgs.some((m) => m.headers['tpd-recorder'] === 'b' && Number(m.headers['tpd-fence']) > old)).toBe(true);
    // Exactly once, in order, for the readers: every batch of the matched stream either archive holds in the span.
    const seqs = kept.filter((m) => m.headers['tpd-stream'] === 'fabric').map((m) => Number(m.headers['tpd-seq']));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i], `fabric message ${i}`).toBeGreaterThan(seqs[i - 1] as number);
    const first = Math.min(...seqs);
    const last = Math.max(...seqs);
    const published = new Set(seqs);
    const inA = await fabricSeqs(a.archive);
    const inB = await fabricSeqs(b.archive);
    const missing = [...inA, ...inB].filter((ts) => ts >= first && ts <= last && !published.has(ts));
    expect(missing, 'batches recorded but never published').toEqual([]);
  }, 90_000);
});
