/**
 * Kafka at the edges of values (the run's shared broker): the sink in the two layouts the
 * older tests leave out (msgpack by path, JSON by stream), with NaN payloads pushed in as
 * msgpack kept bit for bit in msgpack messages, 64-level values and bigints; and the source
 * with msgpack payloads holding NaN payloads (read back from msgpack session frames, bit for
 * bit), `explode` of a msgpack payload, and the `string` and `binary` formats.
 */
import { pino } from 'pino';
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { TapedeckClient } from '../clients/client/index.js';
import { FrameDecoder } from '../protocol/frames.js';
import { formatTs } from '../protocol/time.js';
import { VALUE_DEPTH_MAX, type Update, type Value } from '../protocol/value.js';
import { valueFromJson } from '../protocol/value-json.js';
import { decodeMsgpack, encodeMsgpack } from '../protocol/value-msgpack.js';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/main.js';
import type { KafkaSource } from '../server/sources/kafka.js';
import { createTopic, produce, readTopic, type KafkaPeer } from './helpers/kafka.js';
import { nested } from './helpers/limit-values.js';
import { FRAGILE_NANS } from './helpers/nan.js';
import { PEER_START_MAX_MS, sharedKafka, uniqueName } from './helpers/peers.js';
import { recordingServer } from './helpers/recording-server.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';
import { msgpackBatch, openIngestWs, sendIngestWs } from './helpers/value-outputs.js';
import { bitsDiff, obj, valueDiff } from './helpers/values.js';

let broker: KafkaPeer;
beforeAll(async () => {
  broker = await sharedKafka();
}, PEER_START_MAX_MS);

const T0 = 1_763_000_000_000_000;

function same(want: Value, got: unknown, where: string, bits: boolean): void {
  const d = valueDiff(want, got) ?? (bits ? bitsDiff(want, got) : undefined);
  if (d) throw new Error(`${where}: ${d}`);
}

function hostile(): Update[] {
  const u: Update[] = Array.from(FRAGILE_NANS, (n, i): Update => [`/k/nan${i}`, n]);
  u.push(
    ['/k/neg0', -0], ['/k/big', 2n ** 64n + 1n], ['/k/i64', -(2n ** 63n)], ['/k/sub', 5e-324], ['/k/lone', 'a\ud800'], ['/k/bytes', Uint8Array.of(0, 255)],
    ['/k/deep', nested(VALUE_DEPTH_MAX, FRAGILE_NANS[1] as number)], ['/k/obj', obj([['__proto__', [FRAGILE_NANS[2] as number, -0]], ['$num', 'NaN']])],
    ['/k/é 𝄞/x', 'y'], ['/k/empty', {}],
  );
  return u;
}

describe('audit17: the Kafka sink', () => {
  it('msgpack by path and JSON by stream: every value identical, NaN payloads bit for bit in msgpack', async () => {
    const want = hostile();
    for (const [format, key] of [['msgpack', 'path'], ['json', 'stream']] as const) {
      const topic = uniqueName(`a17-sink-${format}`);
      const srv = await recordingServer({ kafka_sink: { brokers: [broker.brokers], topic, format, key } });
      try {
        const ws = await openIngestWs(srv.url);
        expect(await sendIngestWs(ws, msgpackBatch(T0, want))).toMatchObject({ accepted_updates: want.length, rejected_lines: 0 });
        ws.close();
        await until(() => (srv.ha?.view().sink?.published ?? 0) >= 1, 30_000, 'the batch published');
      } finally {
        await srv.close();
      }
      const msgs = await readTopic(broker.kafka, topic);
      if (key === 'path') {
        expect(msgs).toHaveLength(want.length);
        msgs.forEach((m, k) => {
          const [p, v] = want[k] as Update;
          expect(m.key?.toString('utf8')).toBe(p);
          // The message's map is one level around the value (docs/kafka.md): a consumer allows it.
          const d = decodeMsgpack(m.value as Buffer, false, 1) as { ts: unknown; value: Value };
          expect(d.ts).toBe(T0);
          same(v, d.value, `msgpack by path ${p}`, true);
        });
      } else {
        expect(msgs).toHaveLength(1);
        const d = JSON.parse((msgs[0]?.value as Buffer).toString('utf8')) as { ts: number; updates: Array<[string, unknown]> };
        expect(d.ts).toBe(T0);
        expect(d.updates.map((u) => u[0])).toEqual(want.map((u) => u[0]));
        want.forEach(([p, v], j) => same(v, valueFromJson(d.updates[j]?.[1], p), `json by stream ${p}`, false));
      }
    }
  }, 120_000);
});

/** Each path's value in msgpack session frames from `fromUs` on (state then batches; the last value of a path wins). */
async function msgpackSession(url: string, glob: string, fromUs: number, n: number): Promise<Map<string, Value>> {
  const td = new TapedeckClient(url);
  const s = await td.createSession({ start: formatTs(fromUs), end: 'unbounded', speed: 'unlimited', filter: [glob] });
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/sessions/${s.id}/stream?format=msgpack&layout=columns`);
  const dec = new FrameDecoder();
  const got = new Map<string, Value>();
  let batches = 0;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${batches} of ${n} batches`)), 20_000);
    ws.on('message', (data: Buffer, binary: boolean) => {
      for (const f of dec.decode(data, binary)) {
        if (f.type === 'batch') {
          for (const [p, v] of f.updates) got.set(p, v);
          if (++batches >= n) {
            clearTimeout(t);
            resolve();
          }
        }
        if (f.type === 'error') reject(new Error(`${f.code}: ${f.message}`));
      }
    });
  });
  ws.close();
  await td.deleteSession(s.id).catch(() => undefined);
  return got;
}

describe('audit17: the Kafka source', () => {
  it('msgpack payloads (whole and exploded), string and binary: recorded identical, NaN payloads bit for bit', async () => {
    const values = hostile();
    const t0Ms = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const topics = { mp: uniqueName('a17-in-mp'), ex: uniqueName('a17-in-ex'), str: uniqueName('a17-in-str'), bin: uniqueName('a17-in-bin') };
    for (const t of Object.values(topics)) await createTopic(broker.kafka, t);
    await produce(broker.kafka, topics.mp, values.map(([, v], i) => ({ key: `v${i}`, value: Buffer.from(encodeMsgpack(v)), timestamp: String(t0Ms + i) })));
    // One level around each value: the 64-level one would make 65.
    const doc = obj(values.filter(([p]) => p !== '/k/deep').map(([p, v]) => [p.slice(3), v]));
    await produce(broker.kafka, topics.ex, [{ key: 'doc', value: Buffer.from(encodeMsgpack(doc)), timestamp: String(t0Ms) }]);
    const strings = ['', ' lead and trail ', 'a\u0000b', '𝄞', '\ufeffbom', '{"$num":"NaN"}', '12'];
    await produce(broker.kafka, topics.str, strings.map((s, i) => ({ key: `s${i}`, value: Buffer.from(s, 'utf8'), timestamp: String(t0Ms + i) })));
    const bins = [Buffer.alloc(0), Buffer.from([0xff, 0xfe, 0]), Buffer.from('text')];
    await produce(broker.kafka, topics.bin, bins.map((b, i) => ({ key: `b${i}`, value: b, timestamp: String(t0Ms + i) })));
    const dir = await tmpDir('tapedeck-a17-kafka-in-');
    const src = (name: string, topic: string, format: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name: uniqueName(name), type: 'kafka', brokers: [broker.brokers], topics: [topic], format, batch: 'message', ...extra });
    const srv = await startServer(resolveConfig({
      archive_directory: dir,
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [
        src('mp', topics.mp, 'msgpack', { path: '/mp/{key}' }),
        src('ex', topics.ex, 'msgpack', { path: '/ex/{key}', explode: true }),
        src('str', topics.str, 'string', { path: '/str/{key}' }),
        src('bin', topics.bin, 'binary', { path: '/bin/{key}' }),
      ],
    }), { logger: pino({ level: 'silent' }) });
    try {
      const counts = [values.length, 1, strings.length, bins.length];
      await until(() => srv.sources.every((s, i) => (s as KafkaSource).stats.messages >= (counts[i] as number)), 30_000, 'every message consumed');
      for (const s of srv.sources) expect((s as KafkaSource).stats.decodeErrors, s.name).toBe(0);
      await until(async () => (await (await fetch(`${srv.url}/api/v1/paths?glob=/**`)).json() as { count: number }).count >= values.length * 2 + strings.length + bins.length, 20_000, 'every path recorded');
      const mp = await msgpackSession(srv.url, '/mp/**', t0Ms * 1000 - 1, values.length);
      values.forEach(([p, v], i) => same(v, mp.get(`/mp/v${i}`), `msgpack source ${p}`, true));
      const ex = await msgpackSession(srv.url, '/ex/**', t0Ms * 1000 - 1, 1);
      // Leaves: arrays and objects are walked to their leaves (32 levels at most: deeper is kept whole).
      const flat = new Map<string, Value>();
      const walk = (p: string, v: Value, depth: number): void => {
        if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && depth < 32) {
          const ks = Array.isArray(v) ? v.map((_x, i) => String(i)) : Object.keys(v);
          if (ks.length > 0) {
            for (const k of ks) walk(`${p}/${k.replace(/%/g, '%25').replace(/\//g, '%2F')}`, (v as Record<string, Value>)[k] as Value, depth + 1);
            return;
          }
        }
        flat.set(p, v);
      };
      walk('/ex/doc', doc, 0);
      expect([...ex.keys()].sort()).toEqual([...flat.keys()].sort());
      for (const [p, v] of flat) same(v, ex.get(p), `exploded ${p}`, true);
      const st = await msgpackSession(srv.url, '/str/**', t0Ms * 1000 - 1, strings.length);
      strings.forEach((s, i) => same(s, st.get(`/str/s${i}`), `string s${i}`, false));
      const bn = await msgpackSession(srv.url, '/bin/**', t0Ms * 1000 - 1, bins.length);
      bins.forEach((b, i) => same(new Uint8Array(b), bn.get(`/bin/b${i}`), `binary b${i}`, false));
    } finally {
      await srv.close();
    }
  }, 120_000);
});

describe('audit17: a key repeated within one fetch (batch: fetch)', () => {
  it('every value of the path is kept, and /history writes no JSON object with a key twice', async () => {
    const topic = uniqueName('a17-in-dup');
    await createTopic(broker.kafka, topic);
    const t0Ms = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    // One produce request: the source fetches them as one message set.
    await produce(broker.kafka, topic, [1, 2, 3].map((v, i) => ({ key: 'k', value: Buffer.from(encodeMsgpack(v)), timestamp: String(t0Ms + i) })));
    const dir = await tmpDir('tapedeck-a17-kafka-dup-');
    const srv = await startServer(resolveConfig({
      archive_directory: dir,
      record: { spec: ['/**'], flush_interval: '0' },
      publish: { bind: '127.0.0.1:0' },
      sources: [{ name: uniqueName('dup'), type: 'kafka', brokers: [broker.brokers], topics: [topic], format: 'msgpack', path: '/dup/{key}' }],
    }), { logger: pino({ level: 'silent' }) });
    try {
      await until(() => (srv.sources[0] as KafkaSource).stats.messages >= 3 && (srv.sources[0] as KafkaSource).lag().every((l) => l.lag === 0), 30_000, 'every message consumed and committed');
      let text = '';
      await until(async () => (text = await (await fetch(`${srv.url}/api/v1/history?glob=/dup/**`)).text()) !== '', 20_000, 'the batch in /history');
      const lines = text.split('\n').filter((l) => l !== '');
      // Every value recorded is in the answer, each once, in order, and each line parses to what it says.
      const values: unknown[] = [];
      for (const l of lines) {
        const b = JSON.parse(l) as { updates: Record<string, unknown> };
        const keys = [...l.matchAll(/"\/dup\/k":/g)].length;
        expect(keys, `a line naming /dup/k ${keys} times: ${l}`).toBe(Object.keys(b.updates).length);
        values.push(b.updates['/dup/k']);
      }
      expect(values).toEqual([1, 2, 3]);
    } finally {
      await srv.close();
    }
  }, 60_000);
});
