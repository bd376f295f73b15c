/**
 * Pollers at the edges of values: an `http-json` document (whole and leaves) full of what
 * plain JSON can hold (-0, subnormals, integers past 2^53, `$` keys that are not tags,
 * `__proto__`, lone surrogates and NUL as escapes, 64 levels, empty containers) is recorded
 * as exactly the value it is; a document one level deeper fails the poll, naming why. A
 * `csv-matrix` cell is recorded as the number it names exactly or as its text. Read back
 * from the archive on disk.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VALUE_DEPTH_MAX, type Value } from '../protocol/value.js';
import { rig } from './helpers/upstreams.js';
import { obj, valueDiff } from './helpers/values.js';

let upstream: Server;
let url: string;
let bodies: Buffer[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const body = bodies.shift() ?? Buffer.from('');
    res.writeHead(200, { 'content-type': req.url === '/m' ? 'text/csv' : 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

async function poll(type: string, cfg: Record<string, unknown>, docs: string[]): Promise<{ events: Array<{ ok: boolean; error?: Error }>; values: Map<string, Value> }> {
  const t = await rig();
  bodies = docs.map((d) => Buffer.from(d));
  const src = t.add(type, 'src', { url: `${url}${type === 'csv-matrix' ? '/m' : '/api'}`, interval: '20ms', backoff_initial: '10ms', backoff_max: '20ms', ...cfg });
  const events: Array<{ ok: boolean; error?: Error }> = [];
  const all = new Promise<void>((resolve) => src.on('poll', (e: { ok: boolean; error?: Error }) => {
    if (events.push(e) === docs.length) resolve();
  }));
  src.start();
  await all;
  await t.close();
  const values = new Map<string, Value>();
  for (const b of await t.readBack()) for (const [p, v] of b.updates) values.set(p, v);
  return { events: events.slice(0, docs.length), values };
}

function expectSame(want: Map<string, Value>, got: Map<string, Value>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [p, v] of want) {
    const d = valueDiff(v, got.get(p));
    if (d) throw new Error(`${JSON.stringify(p)}: ${d}`);
  }
}

const DOC = '{"neg0":-0,"under":-1e-400,"sub":5e-324,"max":1.7976931348623157e308,"big":18446744073709551617,"nbig":-9007199254740993,"exact":9007199254740992,'
  + '"tag":{"$num":"NaN"},"tag2":{"$bigint":"1"},"obj":{"$obj":{}},"__proto__":{"constructor":1},"s":"\\ud800\\u0000\\udc00x\\u2028","e":{},"a":[],"n":null,'
  + '"numlike":"1e400","dup":{"a":1,"b":{"a":2}}}';

function docValue(): Value {
  return obj([
    ['neg0', -0], ['under', -0], ['sub', 5e-324], ['max', Number.MAX_VALUE], ['big', 18446744073709551617n], ['nbig', -9007199254740993n], ['exact', 2 ** 53],
    ['tag', obj([['$num', 'NaN']])], ['tag2', obj([['$bigint', '1']])], ['obj', obj([['$obj', {}]])], ['__proto__', obj([['constructor', 1]])],
    ['s', '\ud800\u0000\udc00x\u2028'], ['e', {}], ['a', []], ['n', null], ['numlike', '1e400'], ['dup', obj([['a', 1], ['b', obj([['a', 2]])]])],
  ]);
}

describe('audit17: http-json records plain JSON exactly', () => {
  it('whole: the document is the value, bit for bit; 64 levels taken, 65 fail the poll', async () => {
    const deep64 = `${'['.repeat(VALUE_DEPTH_MAX)}-0${']'.repeat(VALUE_DEPTH_MAX)}`;
    const deep65 = `${'['.repeat(VALUE_DEPTH_MAX + 1)}1${']'.repeat(VALUE_DEPTH_MAX + 1)}`;
    const { events, values } = await poll('http-json', { path: '/w' }, [DOC, deep64, deep65]);
    expect(events.map((e) => e.ok), JSON.stringify(events.map((e) => e.error?.message))).toEqual([true, true, false]);
    expect(events[2]?.error?.message).toMatch(/64|deep|nest/i);
    // The map keeps the last value of /w: the 64-level one (the first document is the next test's).
    let d64: Value = -0;
    for (let i = 0; i < VALUE_DEPTH_MAX; i++) d64 = [d64];
    expectSame(new Map([['/w', d64]]), values);
  });

  it('whole: the first document read back exactly', async () => {
    const { events, values } = await poll('http-json', { path: '/w' }, [DOC]);
    expect(events.map((e) => e.ok)).toEqual([true]);
    expectSame(new Map([['/w', docValue()]]), values);
  });

  it('leaves: each leaf at a path of its keys, keys escaped so distinct keys stay distinct paths', async () => {
    const doc = '{"x":{"":1,"/":2,"%2F":3,"%":4,"a/b":5,"__proto__":6,"10":7,"2":8,"é 𝄞":9,"\\ud800":10,"a\\u0000":11,"\\u0000":12,"%00":13},"l":[-0,{"$num":"NaN"},[]],"z":{}}';
    const { events, values } = await poll('http-json', { path: '/p', mode: 'leaves' }, [doc]);
    expect(events.map((e) => e.ok), events[0]?.error?.message).toEqual([true]);
    expectSame(new Map<string, Value>([
      ['/p/x/', 1], ['/p/x/%2F', 2], ['/p/x/%252F', 3], ['/p/x/%25', 4], ['/p/x/a%2Fb', 5], ['/p/x/__proto__', 6], ['/p/x/10', 7], ['/p/x/2', 8], ['/p/x/é 𝄞', 9],
      ['/p/x/%ED%A0%80', 10], ['/p/x/a%00', 11], ['/p/x/%00', 12], ['/p/x/%2500', 13],
      ['/p/l/0', -0], ['/p/l/1/$num', 'NaN'], ['/p/l/2', []], ['/p/z', {}],
    ]), values);
  });
});

describe('audit17: csv-matrix cells', () => {
  it('numbers it names exactly, text otherwise', async () => {
    const csv = [
      'id,a,b,c,d,e,f,g,h,i,j,k,l',
      'r1,-0,18446744073709551617,1e400,NaN,Infinity,0x10,"12 ",5e-324,+7,.5,"1,5",9007199254740993',
      '"r/2",1.0,-9223372036854775809,"",  ,"""q""",true,null,1e-400,-1e-400,00012,1_000,2024-05-01',
    ].join('\r\n');
    const { events, values } = await poll('csv-matrix', { prefix: '/c', id_column: 'id', snapshot_header: null }, [csv]);
    expect(events.map((e) => e.ok), events[0]?.error?.message).toEqual([true]);
    const row = (id: string, cells: Value[]): Array<[string, Value]> => cells.map((v, i) => [`/c/${id}/${'abcdefghijkl'[i]}`, v]);
    expectSame(new Map<string, Value>([
      ...row('r1', [-0, 18446744073709551617n, '1e400', 'NaN', 'Infinity', '0x10', 12, 5e-324, 7, 0.5, '1,5', 9007199254740993n]),
      ...row('r%2F2', [1, -9223372036854775809n, null, null, '"q"', 'true', 'null', 0, -0, 12, '1_000', '2024-05-01']),
    ]), values);
  });
});
