/**
 * A merged history that loses a shard after its first byte never ends looking complete
 * (docs/cluster.md, "A history cut short"): NDJSON and CSV end with an `error` record naming
 * the shard, then the connection closes without the end of the chunked body (curl exits
 * 18); Parquet stops before its footer. Shards are real processes killed -9 or stopped
 * (SIGSTOP) at a seeded moment of the client's reading (CLUSTER_CUT_SEED, printed).
 * Also: every merged read answers a hung shard within its documented bound, naming it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createServer, request as httpGet, type IncomingMessage, type Server } from 'node:http';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Batch } from '../protocol/value.js';
import type { ShardDirectory, ShardInfo } from '../server/cluster/directory.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { startServer, type TestServer } from './helpers/server.js';
import { ChildShard, frontNode, inFlight } from './helpers/merge-cluster.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const T0 = 1_760_000_000_000_000;
const SHARDS = 3;
const PER_SHARD = 4000;
const PAD = 'x'.repeat(4000);

/** Shard k: PER_SHARD batches of one 4 kB value, so a stream outlasts the sockets' buffers. */
function part(k: number): Batch[] {
  return Array.from({ length: PER_SHARD }, (_, i) => ({ ts: T0 + i * SHARDS + k, updates: [[`/s${k}/v`, `${PAD}${i}`]] as Batch['updates'] }));
}

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

let seed: number;
let single: TestServer;
const expected: Record<string, string[]> = {};
const sizes: Record<string, number> = {};

beforeAll(async () => {
  seed = scheduleSeed('CLUSTER_CUT_SEED', 'cluster cut');
  single = await startServer(Array.from({ length: SHARDS }, (_, k) => part(k)).flat().sort((a, b) => a.ts - b.ts));
  for (const format of ['ndjson', 'csv', 'parquet']) {
    const body = Buffer.from(await (await fetch(`${single.url}/api/v1/history?format=${format}`)).arrayBuffer());
    sizes[format] = body.length;
    expected[format] = body.toString('utf8').split('\n');
  }
}, 60_000);

afterAll(async () => {
  await single?.close();
});

async function cluster(): Promise<{ children: ChildShard[]; front: TestServer }> {
  const children = await Promise.all(Array.from({ length: SHARDS }, (_, k) => ChildShard.start(part(k))));
  closers.push(() => Promise.all(children.map((c) => {
    c.proc?.kill('SIGCONT');
    return c.kill9();
  })));
  const front = await frontNode(children.map((c, k) => ({ id: `s${k}`, url: c.url })));
  closers.push(() => front.close());
  return { children, front };
}

/**
 * GET `path`, pausing once `pauseAtBytes` arrived to run `act` (the shards then wait on a
 * full socket), then reading on to the end: the bytes, and whether the body ended properly.
 */
function readWith(url: string, pauseAtBytes: number, act: () => Promise<void>): Promise<{ res: IncomingMessage; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, (res) => {
      const parts: Buffer[] = [];
      let bytes = 0;
      let acted = false;
      res.on('data', (c: Buffer) => {
        parts.push(c);
        bytes += c.length;
        if (!acted && bytes >= pauseAtBytes) {
          acted = true;
          res.pause();
          act().then(() => res.resume(), reject);
        }
      });
      res.on('error', () => undefined);
      res.on('close', () => resolve({ res, body: Buffer.concat(parts), complete: res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a shard lost after the first byte of a merged history', () => {
  for (const format of ['ndjson', 'csv', 'parquet'] as const) {
    it(`cuts the ${format} answer, naming the shard, never a valid shorter body (kill -9 at a seeded moment)`, async () => {
      const r = rng(seed + format.length);
      const victim = Math.floor(r() * SHARDS);
      // Anywhere in the first quarter of the answer (Parquet compresses the padding: far fewer
      // bytes), so the victim still has more to send than the sockets between it and us hold.
      const pauseAt = 1 + Math.floor(r() * (sizes[format] as number) / 4);
      console.log(`${format}: shard s${victim} killed -9 after ${pauseAt} bytes read`);
      const { children, front } = await cluster();
      const got = await readWith(`${front.url}/api/v1/history?format=${format}`, pauseAt, () => (children[victim] as ChildShard).kill9());
      expect(got.res.statusCode).toBe(200);
      expect(got.complete).toBe(false);
      if (format === 'parquet') {
        // No footer: a Parquet reader refuses the file rather than read fewer rows.
        expect(got.body.subarray(0, 4).toString()).toBe('PAR1');
        expect(got.body.subarray(-4).toString()).not.toBe('PAR1');
        return;
      }
      const lines = got.body.toString('utf8').split('\n');
      expect(lines.pop()).toBe('');
      const last = lines.pop() as string;
      const want = expected[format] as string[];
      // Every record before the cut is the single archive's, in order.
      expect(lines.length).toBeGreaterThan(0);
      expect(lines).toEqual(want.slice(0, lines.length));
      expect(lines.length).toBeLessThan(want.length - 1);
      const cut = format === 'ndjson' ? (JSON.parse(last) as { error: { code: string; cut: { shard: string }; missing: Array<{ shard: string }> } }).error : undefined;
      if (cut) {
        expect(cut.code).toBe('TPD_SHARDS_MISSING');
        expect(cut.cut.shard).toBe(`s${victim}`);
        expect(cut.missing.map((m) => m.shard)).toEqual([`s${victim}`]);
      } else {
        expect(last).toMatch(new RegExp(`^error,,TPD_SHARDS_MISSING,".*""shard"":""s${victim}""`));
      }
    }, 60_000);
  }

  it('cuts the answer of a shard stopped (SIGSTOP) mid-stream once it has been silent clusterShardIdleTimeoutMs', async () => {
    const r = rng(seed + 99);
    const pauseAt = 1 + Math.floor(r() * (sizes.ndjson as number) / 4);
    console.log(`SIGSTOP: shard s1 stopped after ${pauseAt} bytes read`);
    const { children, front } = await cluster();
    const got = await readWith(`${front.url}/api/v1/history`, pauseAt, async () => {
      children[1]!.proc!.kill('SIGSTOP');
    });
    expect(got.complete).toBe(false);
    const lines = got.body.toString('utf8').trimEnd().split('\n');
    const cut = (JSON.parse(lines.pop() as string) as { error: { cut: { shard: string; reason: string } } }).error.cut;
    expect(cut).toEqual({ shard: 's1', reason: `silent for ${SERVER_LIMITS.clusterShardIdleTimeoutMs} ms mid-answer` });
    expect(lines).toEqual((expected.ndjson as string[]).slice(0, lines.length));
  }, 60_000);

  it('makes curl fail (exit 18) and leaves the error record as the last line it wrote', async () => {
    const { children, front } = await cluster();
    const out = join(await tmpDir('tapedeck-cut-curl-'), 'history.ndjson');
    const curl = new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile('curl', ['-sS', '--limit-rate', '2M', '-o', out, `${front.url}/api/v1/history`], (err, _stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? null : 0, stderr }));
    });
    await until(async () => (await stat(out).catch(() => ({ size: 0 }))).size > 0, 20_000, 'curl receiving');
    await children[2]!.kill9();
    const { code, stderr } = await curl;
    expect(code).toBe(18);
    expect(stderr).toMatch(/transfer closed with outstanding read data remaining/);
    const last = (await readFile(out, 'utf8')).trimEnd().split('\n').pop() as string;
    expect(JSON.parse(last)).toMatchObject({ error: { code: 'TPD_SHARDS_MISSING', cut: { shard: 's2' } } });
  }, 60_000);
});

/** A directory that lists every shard live, as Redis membership does while a stopped shard's lease runs. */
class LeasedDirectory implements ShardDirectory {
  readonly self = 'front';
  constructor(private readonly list: Array<{ id: string; url: string }>) {}
  shards(): Promise<readonly ShardInfo[]> {
    return Promise.resolve(this.list.map((s) => ({ ...s, globs: [], horizonUs: 0, renewedMs: Date.now(), live: true })));
  }
}

describe('a hung shard still listed live', () => {
  it('is named missing by every merged read within clusterShardAnswerTimeoutMs, in the header and the body', async () => {
    const children = await Promise.all([0, 1].map((k) => ChildShard.start(part(k).slice(0, 50))));
    closers.push(() => Promise.all(children.map((c) => {
      c.proc?.kill('SIGCONT');
      return c.kill9();
    })));
    const front = await startServer([], { directory: new LeasedDirectory(children.map((c, k) => ({ id: `s${k}`, url: c.url }))) });
    closers.push(() => front.close());
    children[1]!.proc!.kill('SIGSTOP');
    const reason = `timed out after ${SERVER_LIMITS.clusterShardAnswerTimeoutMs} ms`;
    for (const q of ['/api/v1/paths', '/api/v1/state', '/api/v1/state?at=2030-01-01T00:00:00Z', '/api/v1/coverage', '/api/v1/history', '/api/v1/history?format=csv', '/api/v1/history?format=parquet']) {
      const res = await fetch(front.url + q);
      expect(res.status, q).toBe(200);
      expect(res.headers.get('tapedeck-partial'), q).toBe(`TPD_SHARDS_MISSING: s1 (${reason})`);
      const text = await res.text();
      if (q.includes('parquet')) continue;
      if (q.includes('csv')) {
        expect(text.trimEnd().split('\n').pop(), q).toBe(`partial,,TPD_SHARDS_MISSING,"{""missing"":[{""shard"":""s1"",""reason"":""${reason}""}]}"`);
        continue;
      }
      const body = q.startsWith('/api/v1/history') ? JSON.parse(text.trimEnd().split('\n').pop() as string) : JSON.parse(text);
      expect(body.partial, q).toEqual({ code: 'TPD_SHARDS_MISSING', missing: [{ shard: 's1', reason }] });
    }
  }, 60_000);
});

describe('a client leaving a merged history', () => {
  for (const format of ['ndjson', 'parquet'] as const) {
    it(`frees every shard stream at once (${format})`, async () => {
      const shards = await Promise.all(Array.from({ length: SHARDS }, (_, k) => startServer(part(k))));
      closers.push(() => Promise.all(shards.map((s) => s.close())));
      const open = shards.map((s) => inFlight(s));
      const front = await frontNode(shards.map((s, k) => ({ id: `s${k}`, url: s.url })));
      closers.push(() => front.close());
      const ac = new AbortController();
      const res = await fetch(`${front.url}/api/v1/history?format=${format}`, { signal: ac.signal });
      const reader = res.body!.getReader();
      await reader.read();
      expect(open.reduce((n, c) => n + c(), 0)).toBe(SHARDS);
      ac.abort();
      // Well within clusterShardIdleTimeoutMs, after which an abandoned stream would fail anyway.
      await until(() => open.reduce((n, c) => n + c(), 0) === 0, SERVER_LIMITS.clusterShardIdleTimeoutMs / 2, 'every shard stream closed');
    }, 60_000);
  }
});

describe('a shard that fails before its first record', () => {
  it('is named missing in the header and the partial record, and the others\' history is whole', async () => {
    const good = await startServer(part(0).slice(0, 30));
    closers.push(() => good.close());
    // Headers, half a record, then the connection dropped.
    const fake: Server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/api/v1/shard') return res.end(JSON.stringify({ horizon_us: T0, recording: false }));
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"ts":17600');
      setImmediate(() => res.socket?.destroy());
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => fake.close(resolve)));
    const front = await frontNode([{ id: 'a', url: good.url }, { id: 'b', url: `http://127.0.0.1:${(fake.address() as { port: number }).port}` }]);
    closers.push(() => front.close());
    const res = await fetch(`${front.url}/api/v1/history`);
    expect(res.status).toBe(200);
    expect(res.headers.get('tapedeck-partial')).toMatch(/^TPD_SHARDS_MISSING: b \(/);
    const lines = (await res.text()).trimEnd().split('\n');
    expect(JSON.parse(lines.pop() as string)).toMatchObject({ partial: { code: 'TPD_SHARDS_MISSING', missing: [{ shard: 'b' }] } });
    expect(lines).toEqual((await (await fetch(`${good.url}/api/v1/history`)).text()).trimEnd().split('\n'));
  });
});
