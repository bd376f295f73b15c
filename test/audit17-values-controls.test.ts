/**
 * Session controls over the socket carry times (`start`, `end`, `pos`). A control frame with
 * a key twice (`{"set":{"pos":"-1h","pos":"end"}}`, or a msgpack map with a key twice) was
 * read with JSON.parse / the lenient msgpack reader, which keep one of the two without a
 * word: the session then moved to a time the client had also asked otherwise. Refused as
 * ingest refuses it (TPD_BAD_FRAME, saying which key), the session left as it was; the same
 * control without the repeat is taken.
 */
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { TapedeckClient } from '../clients/client/index.js';
import { FrameDecoder, decodeClientFrame, type DecodedFrame } from '../protocol/frames.js';
import { formatTs } from '../protocol/time.js';
import { MsgpackWriter } from '../protocol/value-msgpack.js';
import { recordingServerEach, type RecordingServer } from './helpers/recording-server.js';
import { postNdjson } from './helpers/value-outputs.js';

let srv: RecordingServer;
recordingServerEach((s) => (srv = s));

const T0 = 1_763_000_000_000_000;

function msgpackControl(pairs: Array<[string, string]>): Uint8Array {
  const w = new MsgpackWriter();
  w.mapHeader(2);
  w.str('type');
  w.str('control');
  w.str('set');
  w.mapHeader(pairs.length);
  for (const [k, v] of pairs) {
    w.str(k);
    w.str(v);
  }
  return w.take();
}

describe('audit17: control frames with a key twice', () => {
  it('decodeClientFrame refuses a key twice (JSON and msgpack) and a msgpack str that is not UTF-8; takes the rest as before', () => {
    const enc = new TextEncoder();
    expect(() => decodeClientFrame(enc.encode('{"type":"control","set":{"pos":"-1h","pos":"end"}}'), false)).toThrow(/TPD_BAD_FRAME|key "pos" is twice/);
    expect(() => decodeClientFrame(enc.encode('{"type":"control","set":{"pos":"end"},"set":{"speed":2}}'), false)).toThrow(/is twice/);
    expect(() => decodeClientFrame(msgpackControl([['pos', '-1h'], ['pos', 'end']]), true)).toThrow(/is twice/);
    const bad = msgpackControl([['pos', 'xx']]);
    bad[bad.length - 1] = 0xff; // the str "xx" becomes "x\xff"
    expect(() => decodeClientFrame(bad, true)).toThrow(/not UTF-8/);
    expect(decodeClientFrame(enc.encode('{"type":"control","set":{"pos":"-1h","speed":2}}'), false)).toEqual({ type: 'control', set: { pos: '-1h', speed: 2 } });
    expect(decodeClientFrame(msgpackControl([['pos', 'end']]), true)).toEqual({ type: 'control', set: { pos: 'end' } });
    expect(decodeClientFrame(enc.encode('{"type":"ping"}'), false)).toEqual({ type: 'ping' });
  });

  it('a live session answers TPD_BAD_FRAME and stays where it was; the same control once is taken', async () => {
    for (let i = 0; i < 3; i++) expect((await postNdjson(srv.url, JSON.stringify({ ts: T0 + i * 1_000_000, updates: { '/c/a': i } }))).json).toMatchObject({ accepted_lines: 1 });
    const td = new TapedeckClient(srv.url);
    const s = await td.createSession({ start: formatTs(T0), end: formatTs(T0 + 2_000_000), state: 'pause' } as never);
    for (const format of ['json', 'msgpack'] as const) {
      const ws = new WebSocket(`${srv.url.replace(/^http/, 'ws')}/api/v1/sessions/${s.id}/stream${format === 'msgpack' ? '?format=msgpack' : ''}`);
      const dec = new FrameDecoder();
      const frames: DecodedFrame[] = [];
      ws.on('message', (d: Buffer, binary: boolean) => frames.push(...dec.decode(d, binary)));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const next = async (pred: (f: DecodedFrame) => boolean): Promise<DecodedFrame> => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const i = frames.findIndex(pred);
          if (i >= 0) return frames.splice(i, 1)[0] as DecodedFrame;
          if (Date.now() > deadline) throw new Error(`no frame; have ${frames.map((f) => f.type).join(',')}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await next((f) => f.type === 'state');
      const twice = format === 'json' ? `{"type":"control","set":{"pos":"${formatTs(T0 + 1_000_000)}","pos":"end"}}` : msgpackControl([['pos', formatTs(T0 + 1_000_000)], ['pos', 'end']]);
      ws.send(twice, { binary: format === 'msgpack' });
      const err = await next((f) => f.type === 'error');
      expect(err, format).toMatchObject({ code: 'TPD_BAD_FRAME', message: expect.stringContaining('"pos" is twice') });
      // Nothing moved: no state frame came for either time.
      await new Promise((r) => setTimeout(r, 200));
      expect(frames.filter((f) => f.type === 'state'), format).toEqual([]);
      const once = format === 'json' ? `{"type":"control","set":{"pos":"${formatTs(T0 + 1_000_000)}"}}` : msgpackControl([['pos', formatTs(T0 + 1_000_000)]]);
      ws.send(once, { binary: format === 'msgpack' });
      const st = await next((f) => f.type === 'state');
      expect(st, format).toMatchObject({ ts: T0 + 1_000_000, values: { '/c/a': 1 } });
      ws.close();
      await new Promise((r) => setTimeout(r, 100));
    }
    await td.deleteSession(s.id);
  });
});
