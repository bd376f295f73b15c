/**
 * Values at the nesting limit, through every door (docs/values.md: arrays and objects nest at
 * most valueDepthMax levels; a scalar, bytes included, is no level, and neither is a tag of
 * the JSON form). Seeded shapes of exactly valueDepthMax levels (arrays, objects with hostile
 * keys, one-key `$` objects the JSON form wraps in `$obj`) around hostile scalars (NaN, -0,
 * bigints, bytes, lone surrogates, NUL) go in through HTTP NDJSON and WebSocket msgpack and
 * must come back identical from every output (/history NDJSON and CSV, /state, session frames
 * JSON and msgpack); one level more is refused by both doors with TPD_BAD_ARGUMENT naming the
 * path, nothing recorded. And the line limit (ingestLineBytesMax) counts the same bytes for
 * NDJSON text as for msgpack. AUDIT11_VALUES_SEED replays a run.
 */
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VALUE_DEPTH_MAX, type Update, type Value } from '../protocol/value.js';
import { valueFromJson, valueToCsvCell, valueFromCsvCell, valueToJson } from '../protocol/value-json.js';
import { decodeMsgpack, encodeMsgpack } from '../protocol/value-msgpack.js';
import { recordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { expectAllSame, getText, line, msgpackBatch, openIngestWs, postNdjson as postNdjsonAt, readOutputs, sendIngestWs } from './helpers/value-outputs.js';
import { valueDiff } from './helpers/values.js';
import { rng } from './helpers/workload.js';
import { ndjsonLines, parseMsgpackMessage, type PushedLine } from '../server/sources/push-lines.js';
import { SERVER_LIMITS } from '../server/limits.js';

const seed = scheduleSeed('AUDIT11_VALUES_SEED', 'audit11 values at the depth limit');
const r = rng(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

const SCALARS: readonly Value[] = [NaN, -0, Infinity, -Infinity, 5e-324, 2n ** 70n, -(2n ** 53n) - 1n, 9007199254740993n, new Uint8Array([0, 255]), new Uint8Array(0), '\ud800', 'a\u0000b\u001b', '', 'é𝄞', 1, null, true];
const KEYS = ['a', '__proto__', 'constructor', '', '$x', '$num', '\u0000'];

/** `levels` containers around a hostile scalar, each an array, an object, or a one-key `$` object. */
function nested(levels: number): Value {
  let v: Value = pick(SCALARS);
  for (let i = 0; i < levels; i++) {
    const shape = pick(['array', 'object', 'tag-shaped'] as const);
    if (shape === 'array') v = r() < 0.5 ? [v] : [pick(SCALARS), v];
    else {
      const o: Record<string, Value> = {};
      const key = shape === 'tag-shaped' ? pick(['$a', '$obj', '$num', '$bytes']) : pick(KEYS);
      Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
      if (shape === 'object' && r() < 0.5) o.z = pick(SCALARS);
      v = o;
    }
  }
  return v;
}

describe('values at the depth limit', () => {
  it('the codec writes and reads every form of a value at the limit, and refuses one level more in every form', () => {
    for (let i = 0; i < 300; i++) {
      const v = nested(VALUE_DEPTH_MAX);
      const forms: Array<[string, () => unknown]> = [
        ['json', () => valueFromJson(JSON.parse(JSON.stringify(valueToJson(v))), '/p')],
        ['csv', () => valueFromCsvCell(valueToCsvCell(v), '/p')],
        ['msgpack', () => decodeMsgpack(encodeMsgpack(v))],
      ];
      for (const [name, roundTrip] of forms) expect(valueDiff(v, roundTrip()), name).toBeUndefined();
      const deeper: Value = [v];
      expect(() => valueToJson(deeper)).toThrow(/nested deeper/);
      expect(() => encodeMsgpack(deeper)).toThrow(/nested deeper/);
      // The JSON form of one level more, written by hand: refused by the reader too.
      expect(() => valueFromJson([valueToJson(v)], '/p')).toThrow(/nested deeper/);
    }
  });

  it('a line of text past ingestLineBytesMax in UTF-8 bytes is refused as NDJSON as it is as msgpack, though its UTF-16 length is under', () => {
    const max = SERVER_LIMITS.ingestLineBytesMax;
    const outcome = (l: PushedLine | undefined): string => (l === null || l === undefined ? 'none' : 'error' in l ? l.error.code : 'accepted');
    // 2-byte characters: the byte length is twice the JSON text's length in code units.
    for (const [bytes, want] of [[max - 4096, 'accepted'], [max + 4096, 'TPD_BATCH_TOO_LARGE']] as const) {
      const s = 'é'.repeat(Math.floor(bytes / 2));
      const asJson = outcome(ndjsonLines(line(1_763_000_000_000_000, [['/big', s]])).next().value as PushedLine);
      const asMsgpack = outcome(parseMsgpackMessage(msgpackBatch(1_763_000_000_000_000, [['/big', s]])).next().value as PushedLine);
      expect([asJson, asMsgpack], `${bytes} bytes`).toEqual([want, want]);
    }
  });

  describe('through a recording server', () => {
    let srv: Awaited<ReturnType<typeof recordingServer>>;
    let ws: WebSocket;
    beforeAll(async () => {
      srv = await recordingServer();
      ws = await openIngestWs(srv.url);
    });
    afterAll(async () => {
      ws.close();
      await srv.close();
    });

    const postNdjson = async (text: string): Promise<Record<string, unknown>> => (await postNdjsonAt(srv.url, text)).json;
    const sendWs = (message: Uint8Array): Promise<Record<string, unknown>> => sendIngestWs(ws, message);

    it('a value at the limit comes back identical from every output after NDJSON and msgpack ingest', async () => {
      const t0 = 1_763_000_000_000_000;
      for (let k = 0; k < 6; k++) {
        const updates: Update[] = Array.from({ length: 4 }, (_, i) => [`/d${k}/${i}`, nested(VALUE_DEPTH_MAX)]);
        const viaMsgpack = updates.map(([p, v]): Update => [`/m${p}`, v]);
        expect(await postNdjson(line(t0 + 2 * k, updates))).toMatchObject({ accepted_updates: 4, rejected_lines: 0 });
        expect(await sendWs(msgpackBatch(t0 + 2 * k + 1, viaMsgpack))).toMatchObject({ accepted_updates: 4, rejected_lines: 0 });
        expectAllSame(updates, await readOutputs(srv.url, `/d${k}`, t0 + 2 * k));
        expectAllSame(viaMsgpack, await readOutputs(srv.url, `/m/d${k}`, t0 + 2 * k + 1));
      }
    }, 60_000);

    it('one level more is refused by both doors alike, naming the path, nothing recorded', async () => {
      const t0 = 1_764_000_000_000_000;
      for (let k = 0; k < 6; k++) {
        const v = nested(VALUE_DEPTH_MAX);
        const json = `{"ts":${t0 + k},"updates":{"/deep/j${k}":[${JSON.stringify(valueToJson(v))}]}}`;
        const inner = msgpackBatch(t0 + k, [[`/deep/m${k}`, v]]);
        // The batch's bytes with the value wrapped in one more array (fixarray of 1): the value is the message's last bytes.
        const valueBytes = encodeMsgpack(v);
        const head = inner.subarray(0, inner.length - valueBytes.length);
        const msg = Uint8Array.from([...head, 0x91, ...valueBytes]);
        for (const [door, answer] of [['ndjson', await postNdjson(json)], ['msgpack', await sendWs(msg)]] as const) {
          expect(answer, door).toMatchObject({ accepted_lines: 0, rejected_lines: 1 });
          const [refusal] = answer.rejected as Array<{ code: string; message: string }>;
          expect(refusal?.code, door).toBe('TPD_BAD_ARGUMENT');
          expect(refusal?.message, door).toContain(`/deep/${door === 'ndjson' ? 'j' : 'm'}${k}`);
          expect(refusal?.message, door).toMatch(/nested deeper than 64 levels/);
        }
      }
      expect(await getText(srv.url, '/api/v1/history?glob=/deep/**')).toBe('');
    });
  });
});
