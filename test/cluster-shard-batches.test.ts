/**
 * The shard batches wire (server/cluster/shard-batches.ts) end to end over a real archive:
 * the encoder writes the same bytes as the generic msgpack of `[ts, ids, values, announced]`
 * (so shards and merging nodes of either writer understand each other), every value kind
 * comes back exact whatever the chunking (seeded: CLUSTER_WIRE_SEED), a filter keeps only
 * its paths, and bytes a shard should never send are a shard fault (TPD_INTERNAL: the shard
 * is lost), never taken for the client's error.
 */
import { describe, expect, it } from 'vitest';
import { TapedeckError } from '../protocol/errors.js';
import type { Batch, Value } from '../protocol/value.js';
import { encodeMsgpack } from '../protocol/value-msgpack.js';
import { ShardBatchDecoder, decodeShardBatches, encodeShardBatches } from '../server/cluster/shard-batches.js';
import { Archive } from '../storage/index.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const T = 1_760_000_000_000_000;

/** Every value kind, a path updated twice in a batch, and enough batches to fill several chunks. */
function workload(): Batch[] {
  const kinds: Value[] = [0, -1, 1.5, -0, 2 ** 40, 12345678901234567890n, -(2n ** 70n), 'text', 'é\u{1F600}', '', true, false, null, new Uint8Array([0, 255]), [1, [2, 'x']], { a: 1, b: { c: null } }, 'x'.repeat(300)];
  const out: Batch[] = [{ ts: T, updates: kinds.map((v, i) => [`/k/${i}`, v]) }];
  out.push({ ts: T + 1, updates: [['/k/0', 1], ['/k/0', 2], ['/other/x', 'twice']] });
  for (let i = 0; i < 3000; i++) out.push({ ts: T + 10 + i, updates: [[`/n/${i % 97}`, i], [`/k/${i % kinds.length}`, kinds[(i * 7) % kinds.length] as Value]] });
  return out;
}

async function archiveOf(batches: Batch[]): Promise<Archive> {
  const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
  for (const b of batches) a.writer!.append(b.updates, b.ts);
  await a.writer!.flush();
  return a;
}

async function encoded(a: Archive, filter: string[] = []): Promise<Buffer[]> {
  const c = a.cursor(filter.length > 0 ? { filter } : {});
  await c.seek('beginning');
  const out: Buffer[] = [];
  for await (const chunk of encodeShardBatches(c, () => a.paths, Number.MAX_SAFE_INTEGER)) out.push(Buffer.from(chunk));
  return out;
}

/** The records as the generic encoder writes them: `[ts, ids, values, announced]`, ids as the archive's. */
function reference(a: Archive, batches: Batch[]): Buffer {
  const sent = new Set<number>();
  const parts: Buffer[] = [];
  for (const b of batches) {
    const ids = b.updates.map(([p]) => a.paths.indexOf(p));
    const fresh: Value[] = [];
    for (const id of ids) if (!sent.has(id)) {
      sent.add(id);
      fresh.push(id, a.paths[id] as string);
    }
    const body = encodeMsgpack([b.ts, ids, b.updates.map((u) => u[1]), fresh]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    parts.push(head, Buffer.from(body));
  }
  return Buffer.concat(parts);
}

/** A receiver's path table: ids in order of first sight. */
function table(): { paths: string[]; idOf: (p: string) => number } {
  const paths: string[] = [];
  const ids = new Map<string, number>();
  return { paths, idOf: (p) => ids.get(p) ?? (ids.set(p, paths.push(p) - 1), paths.length - 1) };
}

/** Cuts `bytes` at random places, down to single bytes. */
function* cut(bytes: Buffer, r: () => number): Generator<Buffer> {
  for (let at = 0; at < bytes.length;) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(r() ** 3 * 5000));
    yield bytes.subarray(at, at + n);
    at += n;
  }
}

function decodeAll(chunks: Iterable<Buffer>): Batch[] {
  const t = table();
  const d = new ShardBatchDecoder(1 << 20, t.idOf);
  const out: Batch[] = [];
  for (const chunk of chunks) {
    d.push(chunk);
    for (let b = d.next(); b; b = d.next()) out.push({ ts: b.ts, updates: [...b.ids].map((id, i) => [t.paths[id] as string, b.values[i] as Value]) });
  }
  d.end();
  return out;
}

describe('the shard batches wire over an archive', () => {
  it('writes the bytes of the generic encoding, in chunks of whole records', async () => {
    const batches = workload();
    const a = await archiveOf(batches);
    try {
      const chunks = await encoded(a);
      expect(chunks.length).toBeGreaterThan(1);
      expect(Buffer.concat(chunks).equals(reference(a, batches))).toBe(true);
      // Each chunk ends on a record's end: a chunk alone decodes whole.
      for (const c of chunks) expect(() => decodeAll([c])).not.toThrow(/ends inside a record/);
    } finally {
      await a.close();
    }
  });

  it('gives back every batch exact, however the bytes are cut', async () => {
    const seed = scheduleSeed('CLUSTER_WIRE_SEED', 'shard wire chunking');
    const batches = workload();
    const a = await archiveOf(batches);
    try {
      const bytes = Buffer.concat(await encoded(a));
      const r = rng(seed);
      for (let i = 0; i < 5; i++) expect(decodeAll(cut(bytes, r))).toEqual(batches);
      expect(decodeAll([...bytes].map((x) => Buffer.from([x])))).toEqual(batches);
    } finally {
      await a.close();
    }
  });

  it('keeps only the paths of a filter, and announces only those', async () => {
    const batches = workload();
    const a = await archiveOf(batches);
    try {
      const got = decodeAll(await encoded(a, ['/k/1*', '/other/**']));
      const want = batches.map((b) => ({ ts: b.ts, updates: b.updates.filter(([p]) => /^\/k\/1/.test(p) || p.startsWith('/other/')) })).filter((b) => b.updates.length > 0);
      expect(got.filter((b) => b.updates.length > 0)).toEqual(want);
      expect(new Set(got.flatMap((b) => b.updates.map((u) => u[0]))).size).toBe(new Set(want.flatMap((b) => b.updates.map((u) => u[0]))).size);
    } finally {
      await a.close();
    }
  });
});

describe('bytes a shard should never send', () => {
  const rec = (body: number[] | Buffer): Buffer => {
    const b = Buffer.from(body);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(b.length);
    return Buffer.concat([head, b]);
  };
  const ok = (v: Value): Buffer => rec(Buffer.from(encodeMsgpack(v)));
  it.each([
    ['a value that is not msgpack', rec([0x94, 0x01, 0x91, 0x00, 0x91, 0xc1, 0x92, 0x00, 0xa1, 0x61])],
    ['an id that is not an unsigned integer', ok([1, [-1], [0], [0, '/a']])],
    ['an id count larger than the record', rec([0x94, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff])],
    ['an announced id out of range', ok([1, [0], [0], [-5, '/a']])],
    ['bytes after the announced paths', rec([...encodeMsgpack([1, [0], [0], [0, '/a']]), 0xc0])],
    ['a timestamp that is not a number', ok(['1', [], [], []])],
  ])('refuses %s as a shard fault (TPD_INTERNAL)', async (_what, body) => {
    const t = table();
    const err = await (async () => {
      for await (const x of decodeShardBatches((async function* () { yield body; })(), 1000, t.idOf)) void x;
    })().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TapedeckError);
    expect((err as TapedeckError).code).toBe('TPD_INTERNAL');
  });
});
