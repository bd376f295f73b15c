/**
 * A Kafka sink over a recorder and archive of its own (removed when the test ends), and a log
 * that keeps a server's JSON lines, for the tests of the sink, its tail follower and the
 * Kafka source's refusals.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { onTestFinished } from 'vitest';
import { Recorder } from '../../server/recorder.js';
import { KafkaSink } from '../../server/sinks/kafka.js';
import { Archive } from '../../storage/index.js';
import { tmpDir } from './tmp.js';

export interface SinkOver {
  format?: 'json' | 'msgpack';
  key?: 'stream' | 'path';
  recorderId?: string;
  /** Follow the topic's tail (active/standby); the pair's key, adopted before start. */
  followTail?: boolean;
  pairKey?: string;
}

/** A started sink on `topic` (not active: call setActive) over a new recorder. */
export async function sinkOverRecorder(brokers: string, topic: string, o: SinkOver = {}): Promise<{ sink: KafkaSink; recorder: Recorder }> {
  const archive = await Archive.open(await tmpDir('tapedeck-sink-over-'), { flushIntervalMs: 0 });
  onTestFinished(() => archive.close());
  const recorder = await Recorder.open(archive);
  const sink = new KafkaSink({
    brokers: [brokers], topic, format: o.format ?? 'json', key: o.key ?? 'stream', clientId: 'tapedeck-test', recorderId: o.recorderId ?? 'r1',
    queueMaxBatches: 100_000, bufferWindowMs: 60_000, bufferMaxBatches: 1000, promotionMaxWaitMs: 8_000, followTail: o.followTail ?? false,
    log: pino({ level: 'silent' }),
  });
  if (o.pairKey !== undefined) sink.adoptKey(o.pairKey);
  await sink.start(recorder);
  onTestFinished(() => sink.stop());
  return { sink, recorder };
}

/** A pino logger at warn whose lines are kept, parsed. */
export function keptLog(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'warn' }, out), lines };
}
