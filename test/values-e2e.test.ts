/**
 * The value contract end to end (docs/values.md): hostile values pushed into a real server
 * through HTTP NDJSON and WebSocket ingest (JSON text and msgpack binary messages) come back
 * identical through every output the
 * server has (session frames JSON and msgpack through the SDK, /state, /history NDJSON and
 * CSV), or ingest refuses them with an error naming their path. Seeded; the seed is printed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { exportCommand } from '../clients/cli/export.js';
import type WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatTs } from '../protocol/time.js';
import type { Update } from '../protocol/value.js';
import { valueFromCsvCell, valueFromJson } from '../protocol/value-json.js';
import { recordingServer } from './helpers/recording-server.js';
import { tmpDir } from './helpers/tmp.js';
import { hostileUpdates, propertySeed } from './helpers/values.js';
import { csvRows, expectAllSame, getText as getTextAt, line, msgpackBatch, openIngestWs, postNdjson as postNdjsonAt, query, readOutputs as readOutputsAt, sendIngestWs, type Outputs } from './helpers/value-outputs.js';

/** Each run is three pushes and twelve reads on a real server: a few dozen runs stay well under a minute. */
const RUNS = 60;
const T0_US = 1_763_000_000_000_000;

let srv: Awaited<ReturnType<typeof recordingServer>>;
let ingestWs: WebSocket;
let run = 0;

// One server per test: its archive is a temporary directory removed after each test.
beforeEach(async () => {
  srv = await recordingServer();
  ingestWs = await openIngestWs(srv.url);
});

afterEach(async () => {
  ingestWs.close();
  await srv.close();
});

const postNdjson = (text: string): Promise<{ status: number; json: Record<string, unknown> }> => postNdjsonAt(srv.url, text);
const sendWs = (message: string | Uint8Array): Promise<Record<string, unknown>> => sendIngestWs(ingestWs, message);
const getText = (path: string): Promise<string> => getTextAt(srv.url, path);
const readOutputs = (prefix: string, tsUs: number): Promise<Outputs> => readOutputsAt(srv.url, prefix, tsUs);

describe('every value through every door', () => {
  it('comes back identical from every output after HTTP NDJSON and WebSocket ingest, JSON and msgpack', async () => {
    await fc.assert(
      fc.asyncProperty(hostileUpdates, async (updates) => {
        const k = run++;
        const viaHttp = updates.map(([p, v]): Update => [`/h${k}${p}`, v]);
        const viaWs = updates.map(([p, v]): Update => [`/w${k}${p}`, v]);
        const viaMsgpack = updates.map(([p, v]): Update => [`/m${k}${p}`, v]);
        const tsHttp = T0_US + k * 1000;
        const posted = await postNdjson(line(tsHttp, viaHttp));
        expect(posted.json, JSON.stringify(posted.json)).toMatchObject({ accepted_updates: updates.length, rejected_lines: 0 });
        const answered = await sendWs(line(tsHttp + 1, viaWs));
        expect(answered, JSON.stringify(answered)).toMatchObject({ accepted_updates: updates.length, rejected_lines: 0 });
        const binary = await sendWs(msgpackBatch(tsHttp + 2, viaMsgpack));
        expect(binary, JSON.stringify(binary)).toMatchObject({ accepted_updates: updates.length, rejected_lines: 0 });
        expectAllSame(viaHttp, await readOutputs(`/h${k}`, tsHttp));
        expectAllSame(viaWs, await readOutputs(`/w${k}`, tsHttp + 1));
        expectAllSame(viaMsgpack, await readOutputs(`/m${k}`, tsHttp + 2));
      }),
      { seed: propertySeed('values end to end'), numRuns: RUNS },
    );
  }, 120_000);

  it('comes back identical from tapedeck export, NDJSON and CSV, read from the archive a server records into', async () => {
    const samples = fc.sample(hostileUpdates, { seed: propertySeed('export'), numRuns: 20 });
    const pushed = new Map<number, Update[]>();
    for (const [i, updates] of samples.entries()) {
      const ts = T0_US + 20_000_000 + i;
      const mine = updates.map(([p, v]): Update => [`/x${p}`, v]);
      expect((await postNdjson(line(ts, mine))).json).toMatchObject({ accepted_updates: mine.length });
      pushed.set(ts, mine);
    }
    const dir = await tmpDir('tapedeck-export-');
    const from = formatTs(T0_US + 20_000_000);
    for (const format of ['ndjson', 'csv']) {
      const out = join(dir, `out.${format}`);
      expect(await exportCommand(['--archive', srv.dir, '--glob', '/x/**', '--from', from, '--format', format, '--out', out])).toBe(0);
      const text = await readFile(out, 'utf8');
      const got = new Map<number, Map<string, unknown>>();
      const at = (ts: number): Map<string, unknown> => got.get(ts) ?? (got.set(ts, new Map()).get(ts) as Map<string, unknown>);
      if (format === 'ndjson') {
        for (const l of text.split('\n').filter((x) => x !== '')) {
          const b = JSON.parse(l) as { ts: number; updates: Record<string, unknown> };
          for (const [p, j] of Object.entries(b.updates)) at(b.ts).set(p, valueFromJson(j, p));
        }
      } else {
        for (const r of csvRows(text).slice(1)) at(Number(r[0])).set(r[2] as string, valueFromCsvCell(r[3] as string, r[2] as string));
      }
      expect([...got.keys()]).toEqual([...pushed.keys()]);
      for (const [ts, want] of pushed) expectAllSame(want, { [`export ${format} at ${ts}`]: got.get(ts) as Map<string, unknown> });
    }
  });

  it('refuses, naming the path, what it cannot take exactly: unknown tags, integers a double would round', async () => {
    const ts = T0_US + 10_000_000;
    const lines = [
      `{"ts":${ts},"updates":{"/bad/big":9007199254740993}}`,
      `{"ts":${ts},"updates":{"/bad/tag":{"x":[{"$date":"2020"}]}}}`,
      `{"ts":${ts},"updates":{"/bad/num":{"$num":"1.5"}}}`,
      `{"ts":${ts},"updates":{"/bad/bytes":{"$bytes":"***"}}}`,
    ];
    for (const send of [async (l: string) => (await postNdjson(l)).json, sendWs]) {
      const answers: Array<Record<string, unknown>> = [];
      for (const l of lines) answers.push(await send(l));
      answers.forEach((a, i) => {
        expect(a, JSON.stringify(a)).toMatchObject({ accepted_lines: 0, rejected_lines: 1 });
        const [r] = a.rejected as Array<{ code: string; message: string }>;
        expect(r?.code).toBe('TPD_BAD_ARGUMENT');
        expect(r?.message).toContain(['/bad/big', '/bad/tag', '/bad/num', '/bad/bytes'][i]);
      });
    }
    // Nothing of them was recorded.
    expect(await getText(`/api/v1/history?${query('/bad', {})}`)).toBe('');
  });

  it('refuses, naming the path, msgpack it cannot read: unknown extensions, bad bigint text, too deep; takes exactly what JSON needs tags for', async () => {
    const ts = T0_US + 30_000_000;
    const head = msgpackBatch(ts, [['/bad/x', null]]);
    // The batch's bytes up to its one value (nil, the last byte), then another value's bytes.
    const withValue = (path: string, value: number[]): Uint8Array => {
      const pre = msgpackBatch(ts, [[path, null]]);
      return Uint8Array.from([...pre.subarray(0, pre.length - 1), ...value]);
    };
    expect(head.at(-1)).toBe(0xc0);
    const cases: Array<[string, number[]]> = [
      ['/bad/ext', [0xd4, 9, 0]],
      ['/bad/bigint', [0xd5, 2, 0x61, 0x62]],
      ['/bad/deep', [...new Array<number>(100).fill(0x91), 0xc0]],
      ['/bad/cut', [0xc6, 0, 0, 1, 0, 1]],
    ];
    for (const [path, value] of cases) {
      const a = await sendWs(withValue(path, value));
      expect(a, JSON.stringify(a)).toMatchObject({ accepted_lines: 0, rejected_lines: 1 });
      const [r] = a.rejected as Array<{ code: string; message: string }>;
      expect(r?.code).toBe('TPD_BAD_ARGUMENT');
      expect(r?.message).toContain(path);
    }
    const surrogate = await sendWs(msgpackBatch(ts, [['/bad/\ud800', 1]]));
    expect(surrogate).toMatchObject({ rejected: [{ code: 'TPD_BAD_PATH', message: expect.stringContaining('/bad/\\ud800') }] });
    expect(await getText(`/api/v1/history?${query('/bad', {})}`)).toBe('');
    // msgpack carries 2^53 + 1 and a `$`-keyed object as themselves: no tag, nothing to refuse.
    const exact: Update[] = [['/mp/big', 2n ** 53n + 1n], ['/mp/tag', { $date: '2020' }]];
    expect(await sendWs(msgpackBatch(ts, exact))).toMatchObject({ accepted_updates: 2, rejected_lines: 0 });
    expectAllSame(exact, await readOutputs('/mp', ts));
  });
});
