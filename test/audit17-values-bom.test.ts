/**
 * U+FEFF (the byte order mark) at the start of a string is a character like any other
 * (docs/values.md: strings equal code unit for code unit). A WHATWG TextDecoder without
 * `ignoreBOM` swallows it at the start of what it decodes: the msgpack reader (archive
 * columns, msgpack session frames in clients) did so for strings over 64 bytes, and remote
 * write's label decoder for every label name and value, so a string or a label came back
 * shorter than it went in, or (a label value that was only the mark) not at all.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import snappy from 'snappy';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WriteRequestSchema } from '../protocol/prompb/gen/remote_pb.js';
import { decodeLabels } from '../protocol/prompb/write-request.js';
import type { Update } from '../protocol/value.js';
import { decodeMsgpack, encodeMsgpack, MsgpackReader } from '../protocol/value-msgpack.js';
import { valueFromJson } from '../protocol/value-json.js';
import { formatTs } from '../protocol/time.js';
import { exportCommand } from '../clients/cli/export.js';
import { tmpDir } from './helpers/tmp.js';
import { readAll } from './helpers/replay.js';
import { recordingServer } from './helpers/recording-server.js';
import { expectAllSame, line, msgpackBatch, openIngestWs, postNdjson, readOutputs, sendIngestWs } from './helpers/value-outputs.js';
import { obj, valueDiff } from './helpers/values.js';

const BOM = '\ufeff';
const LENGTHS = [0, 1, 15, 16, 17, 63, 64, 65, 100, 4096, 70_000];

function bomStrings(): string[] {
  const out: string[] = [];
  for (const n of LENGTHS) {
    out.push(BOM + 'x'.repeat(n));
    out.push(BOM + BOM + 'é'.repeat(n));
    out.push(BOM + '\ud800' + 'y'.repeat(n)); // with a lone surrogate: ext 1 in msgpack
  }
  return out;
}

describe('audit17: a leading U+FEFF in the msgpack codec', () => {
  it('reads back every string, key and bigint text as written, strict or not', () => {
    for (const s of bomStrings()) {
      for (const strict of [false, true]) {
        const v = obj([[s, [s]]]);
        const d = valueDiff(v, decodeMsgpack(encodeMsgpack(v), strict));
        if (d) throw new Error(`${s.length} chars, strict ${strict}: ${d}`);
      }
    }
  });

  it('refuses an ext 2 (bigint) whose text starts with U+FEFF instead of reading the digits after it', () => {
    const digits = Buffer.from(`${BOM}123456789012345678901234567890`, 'utf8');
    const bytes = Uint8Array.from([0xc7, digits.length, 2, ...digits]);
    for (const strict of [false, true]) expect(() => new MsgpackReader(bytes, 0, bytes.length, strict).value(0)).toThrow(/bigint/);
  });
});

describe('audit17: a leading U+FEFF end to end', () => {
  let srv: Awaited<ReturnType<typeof recordingServer>>;
  beforeEach(async () => {
    srv = await recordingServer({ sources: [{ name: 'push', type: 'push' }, { name: 'prom', type: 'remote_write' }] });
  });
  afterEach(async () => {
    await srv.close();
  });

  it('strings and keys starting with it come back whole from every output, pushed as NDJSON and as msgpack', async () => {
    const strings = bomStrings();
    const updates = (prefix: string): Update[] => strings.map((s, i): Update => [`${prefix}/s${i}`, i % 2 === 0 ? s : obj([[s, s]])]);
    const t0 = 1_763_000_000_000_000;
    const a = updates('/nd');
    expect((await postNdjson(srv.url, line(t0, a))).json).toMatchObject({ accepted_updates: a.length, rejected_lines: 0 });
    const ws = await openIngestWs(srv.url);
    const b = updates('/mp');
    expect(await sendIngestWs(ws, msgpackBatch(t0 + 1, b))).toMatchObject({ accepted_updates: b.length, rejected_lines: 0 });
    ws.close();
    // Paths too: a level may start with it.
    const c: Update[] = [[`/p/${BOM}x`, 1], [`/p/${BOM}${'z'.repeat(100)}`, 2]];
    expect((await postNdjson(srv.url, line(t0 + 2, c))).json).toMatchObject({ accepted_updates: 2 });
    expectAllSame(a, await readOutputs(srv.url, '/nd', t0));
    expectAllSame(b, await readOutputs(srv.url, '/mp', t0 + 1));
    expectAllSame(c, await readOutputs(srv.url, '/p', t0 + 2));
    // tapedeck export reads the archive directory itself.
    const out = join(await tmpDir('tapedeck-a17-bom-export-'), 'out.ndjson');
    expect(await exportCommand(['--archive', srv.dir, '--glob', '/mp/**', '--from', formatTs(t0), '--out', out])).toBe(0);
    const lines = (await readFile(out, 'utf8')).split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    const u = (JSON.parse(lines[0] as string) as { updates: Record<string, unknown> }).updates;
    expectAllSame(b, { 'tapedeck export': new Map(Object.keys(u).map((p) => [p, valueFromJson(u[p], p)])) });
  }, 60_000);

  it('remote write keeps a label name or value starting with it (a value of only the mark is a label, not an empty one)', async () => {
    const values = [BOM, `${BOM}x`, `${BOM}${BOM}`, `a${BOM}`];
    const req = create(WriteRequestSchema, {
      timeseries: values.map((v, i) => ({ labels: [{ name: '__name__', value: 'bom' }, { name: 'i', value: String(i) }, { name: 'v', value: v }], samples: [{ value: i, timestamp: 1_763_000_000_000n }] })),
    });
    const raw = Buffer.from(toBinary(WriteRequestSchema, req));
    const r = await srv.app.inject({
      method: 'POST', url: '/api/v1/write?source=prom', payload: snappy.compressSync(raw),
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
    });
    expect(r.statusCode, r.body).toBe(204);
    await srv.archive.writer?.flush();
    const paths = (await readAll(srv.archive.cursor())).flatMap((b) => b.updates.map((u) => u[0]));
    expect(paths.sort()).toEqual(values.map((v, i) => `/prom/bom/i=${i}/v=${v}`).sort());
    // The decoder alone, for a label name too.
    const one = create(WriteRequestSchema, { timeseries: [{ labels: [{ name: `${BOM}n`, value: `${BOM}v` }], samples: [] }] });
    const bytes = toBinary(WriteRequestSchema, one);
    // The Label message inside TimeSeries inside WriteRequest: skip the two length-prefixed headers.
    const labelStart = 4;
    expect(decodeLabels(bytes, [labelStart, bytes.length])).toEqual([[`${BOM}n`, `${BOM}v`]]);
  });
});
