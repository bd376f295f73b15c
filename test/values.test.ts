/**
 * One value codec per wire format, exact for every value (docs/values.md): JSON form,
 * msgpack form, the archive's columns, session frames and CSV cells, each a round trip that
 * gives back the identical value, tested with hostile values (test/helpers/values.ts).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { decodeClientFrame, encodeJsonFrame, encodeJsonRawFrame } from '../protocol/frames.js';
import { MsgpackWriter, encodeMsgpackFrame, encodeStateFrame } from '../protocol/msgpack-frames.js';
import { encodeBatchFrame } from '../protocol/msgpack-batch-frame.js';
import { VALUE_DEPTH_MAX, isValidPath, setOwn, type Value } from '../protocol/value.js';
import { parseJsonText, parseJsonValueText, valueFromCsvCell, valueFromJson, valueToCsvCell, valueToJson, valueToJsonText } from '../protocol/value-json.js';
import { decodeMsgpack, encodeMsgpack } from '../protocol/value-msgpack.js';
import { decodeBatches, encodeBatches } from '../storage/codec/payload.js';
import { hostileUpdates, hostileValue, propertySeed, valueDiff } from './helpers/values.js';

const RUNS = 300;

function same(want: Value, got: unknown): void {
  const d = valueDiff(want, got);
  if (d) throw new Error(d);
}

function refused(f: () => unknown, code: string, ...words: string[]): void {
  try {
    f();
  } catch (err) {
    expect(isTapedeckError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    for (const w of words) expect((err as Error).message).toContain(w);
    return;
  }
  throw new Error('was not refused');
}

const withProto = (): Record<string, Value> => {
  const o: Record<string, Value> = {};
  setOwn(o, '__proto__', { polluted: true });
  setOwn(o, 'constructor', 'c');
  return o;
};

describe('the JSON form', () => {
  it('gives back every hostile value through JSON text, and the fast text equals the tree', () => {
    fc.assert(
      fc.property(hostileValue, (v) => {
        const text = valueToJsonText(v);
        expect(text).toBe(JSON.stringify(valueToJson(v)));
        same(v, valueFromJson(JSON.parse(text), '/p'));
        // Ingest takes whatever the outputs write (2^60 as a double is exact, so accepted).
        same(v, parseJsonValueText(text, '/p'));
      }),
      { seed: propertySeed('JSON form'), numRuns: RUNS },
    );
  });

  it('escapes user objects of the tag shape with $obj and reads tags back as values', () => {
    expect(valueToJsonText({ $num: 'NaN' })).toBe('{"$obj":{"$num":"NaN"}}');
    expect(valueToJsonText([NaN, -0, Infinity, -Infinity])).toBe('[{"$num":"NaN"},{"$num":"-0"},{"$num":"Infinity"},{"$num":"-Infinity"}]');
    expect(valueToJsonText(2n ** 64n)).toBe('{"$bigint":"18446744073709551616"}');
    expect(valueToJsonText(new Uint8Array([0, 255]))).toBe('{"$bytes":"AP8="}');
    expect(valueToJsonText({ a: 1, $b: 2 })).toBe('{"a":1,"$b":2}'); // two keys: not a tag
    expect(valueToJsonText('\ud800')).toBe('"\\ud800"');
    same(withProto(), valueFromJson(JSON.parse(valueToJsonText(withProto())), '/p'));
    expect(Object.getPrototypeOf(valueFromJson(JSON.parse('{"__proto__":{"x":1}}'), '/p'))).toBe(Object.prototype);
  });

  it('takes a bigint within 2^53 as the number it equals', () => {
    expect(valueFromJson({ $bigint: '5' }, '/p')).toBe(5);
    expect(valueFromJson({ $bigint: '-9007199254740993' }, '/p')).toBe(-9007199254740993n);
    expect(valueToJson(7n)).toBe(7);
  });

  it('refuses unknown and malformed tags naming the path and the place inside the value', () => {
    refused(() => valueFromJson({ a: [0, { $foo: 1 }] }, '/dev/x'), 'TPD_BAD_ARGUMENT', '/dev/x', '.a[1]', '$foo', '$obj');
    refused(() => valueFromJson({ $num: '1' }, '/p'), 'TPD_BAD_ARGUMENT', '/p', '$num');
    refused(() => valueFromJson({ $num: 'nan' }, '/p'), 'TPD_BAD_ARGUMENT', '$num');
    // Object.prototype's members are no spellings: a lookup in a plain object found them (constructor was the function Object).
    for (const s of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty']) refused(() => valueFromJson({ $num: s }, '/p'), 'TPD_BAD_ARGUMENT', '$num');
    refused(() => valueFromJson({ $bigint: '1.5' }, '/p'), 'TPD_BAD_ARGUMENT', '$bigint');
    refused(() => valueFromJson({ $bigint: 12 }, '/p'), 'TPD_BAD_ARGUMENT', '$bigint');
    refused(() => valueFromJson({ $bytes: 'not base64!' }, '/p'), 'TPD_BAD_ARGUMENT', '$bytes');
    refused(() => valueFromJson({ $bytes: 'AAA' }, '/p'), 'TPD_BAD_ARGUMENT', '$bytes');
    refused(() => valueFromJson({ $obj: [1] }, '/p'), 'TPD_BAD_ARGUMENT', '$obj');
    refused(() => valueFromJson({ $obj: null }, '/p'), 'TPD_BAD_ARGUMENT', '$obj');
  });

  it('refuses integer literals a double would round, naming where they are, and keeps exact ones', () => {
    refused(() => parseJsonText('{"updates":{"/a":{"x":[1,9007199254740993]}}}'), 'TPD_BAD_ARGUMENT', '.updates./a.x[1]', '{"$bigint":"9007199254740993"}');
    refused(() => parseJsonValueText('-123456789012345678901', '/p'), 'TPD_BAD_ARGUMENT', '/p', '$bigint');
    refused(() => parseJsonText('{"a\\"b":12345678901234567891}'), 'TPD_BAD_ARGUMENT', '.a"b');
    expect(parseJsonText('[9007199254740992, 1e300, 9007199254740993.5, 1152921504606846976, 1152921504606847000, "9007199254740993"]')).toEqual([2 ** 53, 1e300, 9007199254740994, 2 ** 60, 2 ** 60, '9007199254740993']);
    expect(() => parseJsonText('{"a":')).toThrow(SyntaxError);
  });

  it('refuses values nested deeper than the limit instead of overflowing the stack', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    refused(() => valueFromJson(JSON.parse(deep), '/p'), 'TPD_BAD_ARGUMENT', 'deeper');
    let v: Value = 1;
    for (let i = 0; i < VALUE_DEPTH_MAX + 1; i++) v = [v];
    refused(() => valueToJson(v), 'TPD_BAD_ARGUMENT', 'deeper');
    refused(() => encodeMsgpack(v), 'TPD_BAD_ARGUMENT', 'deeper');
    const bytes = new Uint8Array(100_000).fill(0x91);
    refused(() => decodeMsgpack(bytes), 'TPD_BAD_ARGUMENT', 'deeper');
  });

  it('writes CSV cells that read back as the identical value', () => {
    const cells = [NaN, -0, Infinity, -Infinity, 0.1, 'NaN', null, 'up', '', '12', 'true', '{x', '\ud800', 'a,b', 2n ** 64n].map((v) => valueToCsvCell(v));
    expect(cells).toEqual(['NaN', '-0', 'Infinity', '-Infinity', '0.1', '"NaN"', 'null', 'up', '""', '"12"', '"true"', '"{x"', '"\\ud800"', 'a,b', '{"$bigint":"18446744073709551616"}']);
    fc.assert(
      fc.property(hostileValue, (v) => same(v, valueFromCsvCell(valueToCsvCell(v), '/p'))),
      { seed: propertySeed('CSV cells'), numRuns: RUNS },
    );
  });
});

describe('the msgpack form', () => {
  it('gives back every hostile value', () => {
    fc.assert(
      fc.property(hostileValue, (v) => same(v, decodeMsgpack(encodeMsgpack(v)))),
      { seed: propertySeed('msgpack form'), numRuns: RUNS },
    );
  });

  it('decodes random bytes to a value or refuses them with TPD_BAD_ARGUMENT, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          decodeMsgpack(b);
        } catch (err) {
          expect(isTapedeckError(err, 'TPD_BAD_ARGUMENT'), String(err)).toBe(true);
        }
      }),
      { seed: propertySeed('msgpack fuzz'), numRuns: 2000 },
    );
    // A count far beyond the bytes is refused before anything is allocated.
    refused(() => decodeMsgpack(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff])), 'TPD_BAD_ARGUMENT', 'longer');
    refused(() => decodeMsgpack(Uint8Array.from([0xd4, 0x7f, 0])), 'TPD_BAD_ARGUMENT', 'extension');
  });
});

describe('the archive', () => {
  it('stores and reads back every hostile value exactly, alone or in mixed columns', () => {
    fc.assert(
      fc.property(fc.array(hostileUpdates, { minLength: 1, maxLength: 5 }), (batches) => {
        const ids: number[] = [];
        const values: Value[] = [];
        const idOf = new Map<string, number>();
        for (const b of batches) for (const [p, v] of b) {
          ids.push(idOf.get(p) ?? (idOf.set(p, idOf.size), idOf.size - 1));
          values.push(v);
        }
        const ts = batches.map((_, i) => 1_700_000_000_000_000 + i);
        const flat = { ts, counts: batches.map((b) => b.length), ids, values, batchCount: batches.length, updateCount: ids.length };
        const d = decodeBatches(Uint8Array.from(encodeBatches(flat)), ts[0] as number);
        expect(Array.from(d.ids)).toEqual(ids);
        values.forEach((v, i) => same(v, d.values[i]));
      }),
      { seed: propertySeed('archive columns'), numRuns: RUNS },
    );
  });

  it('reads columns msgpackr wrote before this codec, recovering what they hold', () => {
    // Made by storage/codec/payload.ts at 292f3ab (msgpackr) from the values below.
    const raw = new Uint8Array(readFileSync(new URL('./fixtures/values/payload-msgpackr.bin', import.meta.url)));
    const proto: Record<string, Value> = {};
    setOwn(proto, '__proto__', 1);
    proto.b = 'x';
    // msgpackr wrote lone surrogates of short strings as WTF-8 (recovered now), of long ones
    // as U+FFFD, and a nested -0 as 0: that is what the bytes hold.
    const long = 'é'.repeat(40) + '\ufffd' + 'z'.repeat(40);
    const want: Value[] = ['ascii', 'ünï 𝄞', '\ud800', long, '', { a: [1, 2.5, null, true, false], s: 'str' }, proto, new Uint8Array([0, 1, 255]), 2n ** 60n, -(2n ** 60n), 1.5, 123456789, -7, 2 ** 40, { a: 0 }, [{ $num: 'NaN' }], 'x'.repeat(300), null, true];
    const d = decodeBatches(raw, 1_700_000_000_000_000);
    expect(d.values.length).toBe(want.length);
    want.forEach((v, i) => same(v, d.values[i]));
  });
});

describe('session frames', () => {
  it('msgpack frames carry ts as integers and values exactly; JSON frames give values back', () => {
    fc.assert(
      fc.property(hostileUpdates, fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }), (updates, ts) => {
        const paths = updates.map((u) => u[0]);
        const view = { ts, ids: updates.map((_, i) => i), values: updates.map((u) => u[1]), from: 0, to: updates.length };
        const w = new MsgpackWriter();
        const bytes = encodeBatchFrame(w, [view], undefined);
        const f = decodeMsgpack(bytes) as { ts: unknown; updates: Array<[number, Value]> };
        expect(f.ts).toBe(ts);
        expect(bytes[1 + 5 + 6 + 3]).toBe(0xcf); // {type: "batch", ts: uint64 ...
        updates.forEach(([, v], i) => same(v, f.updates[i]?.[1]));
        const s = decodeMsgpack(encodeStateFrame(w, ts, updates.map((u, i) => [i, u[1]]))) as { values: Array<[number, Value]> };
        updates.forEach(([, v], i) => same(v, s.values[i]?.[1]));
        const j = JSON.parse(encodeJsonRawFrame([view], paths, undefined)) as { updates: Array<[string, unknown]> };
        updates.forEach(([p, v], i) => {
          expect(j.updates[i]?.[0]).toBe(p);
          same(v, valueFromJson(j.updates[i]?.[1], p));
        });
        const values: Record<string, Value> = {};
        for (const [p, v] of updates) setOwn(values, p, v);
        const st = JSON.parse(encodeJsonFrame({ type: 'state', ts, values })) as { values: Record<string, unknown> };
        for (const [p, v] of updates) same(v, valueFromJson(st.values[p], p));
      }),
      { seed: propertySeed('session frames'), numRuns: RUNS },
    );
  });

  it('writes posUs of a controls frame as an integer', () => {
    const controls = { start: null, end: null, pos: null, posUs: 1_700_000_000_000_123, speed: 1, state: 'paused', loop: false };
    const bytes = encodeMsgpackFrame(new MsgpackWriter(), { type: 'controls', controls } as never);
    expect(Buffer.from(bytes).includes(Buffer.from([0xcf, 0x00, 0x06, 0x0a]))).toBe(true);
    expect((decodeMsgpack(bytes) as { controls: { posUs: unknown } }).controls.posUs).toBe(1_700_000_000_000_123);
  });

  it('takes a client control frame with an integer pos in msgpack; garbage is TPD_BAD_FRAME', () => {
    const w = new MsgpackWriter();
    const frame = decodeClientFrame(encodeMsgpack({ type: 'control', set: { pos: 1_700_000_000_000_000 } }, w), true);
    expect(frame).toEqual({ type: 'control', set: { pos: 1_700_000_000_000_000 } });
    expect(decodeClientFrame(new TextEncoder().encode('{"type":"ping"}'), false)).toEqual({ type: 'ping' });
    refused(() => decodeClientFrame(Uint8Array.from([0xc1]), true), 'TPD_BAD_FRAME');
    refused(() => decodeClientFrame(new TextEncoder().encode('{"type":'), false), 'TPD_BAD_FRAME');
  });
});

describe('paths', () => {
  it('refuses a path holding a lone surrogate (the archive stores paths as UTF-8)', () => {
    expect(isValidPath('/a/\ud800')).toBe(false);
    expect(isValidPath('/a/𝄞')).toBe(true);
  });
});

describe('the web player', () => {
  it('reads values with the server codec from its bundle: $obj, __proto__ keys, tags inside', async () => {
    const { buildWebProtocol } = await import('../scripts/build-web.mjs');
    await buildWebProtocol();
    const web = await import('../clients/web/values.js');
    const wire = JSON.parse(valueToJsonText({ $num: 'NaN' })) as unknown;
    expect(web.reviveValue(wire)).toEqual({ $num: 'NaN' });
    expect(web.isNumeric(wire)).toBe(false);
    expect(web.formatValue(wire)).toBe('{"$obj":{"$num":"NaN"}}');
    const proto = web.reviveValue(JSON.parse(valueToJsonText(withProto()))) as Value;
    same(withProto(), proto);
    expect(web.chartNumber(JSON.parse(valueToJsonText(2n ** 60n)))).toBe(2 ** 60);
    expect(web.formatValue(JSON.parse(valueToJsonText(-0)))).toBe('-0');
    expect(web.formatValue({ $date: 1 })).toBe('{"$date":1}'); // an unknown tag is shown as sent
    // A tag it cannot read is shown as sent: never Object.prototype's member its spelling names.
    for (const s of ['constructor', '__proto__', 'toString']) expect(web.reviveValue({ $num: s }), s).toEqual({ $num: s });
  });
});
