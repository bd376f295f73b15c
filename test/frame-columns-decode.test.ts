/**
 * The one client decoder (protocol/frames.ts FrameDecoder) on batches of either layout
 * (docs/playback.md, "Layouts"): well-formed columns give the pairs they stand for, and every
 * malformed batch is TPD_BAD_FRAME, never a TypeError nor a frame accepted with updates
 * dropped.
 */
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../protocol/frames.js';
import { MsgpackWriter, encodeMsgpackFrame } from '../protocol/msgpack-frames.js';
import { TapedeckError } from '../protocol/errors.js';
import { encodeMsgpack } from '../protocol/value-msgpack.js';

const json = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
/** A msgpack decoder told of ids 0 and 1. */
function msgpackDecoder(): FrameDecoder {
  const d = new FrameDecoder();
  d.decode(encodeMsgpackFrame(new MsgpackWriter(), { type: 'paths', paths: [[0, '/a'], [1, '/b']] }), true);
  return d;
}

function badFrame(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(TapedeckError);
    return (err as TapedeckError).code;
  }
  return 'accepted';
}

describe('FrameDecoder, columns layout', () => {
  it('reads JSON paths and msgpack ids with their values as the pairs they stand for', () => {
    const want = [{ type: 'batch', ts: 5, updates: [['/a', 1], ['/b', { $x: 1 }]] }];
    expect(new FrameDecoder().decode(json({ type: 'batch', ts: 5, paths: ['/a', '/b'], values: [1, { $obj: { $x: 1 } }] }), false)).toEqual(want);
    expect(new FrameDecoder().decode(json({ type: 'batches', batches: [{ ts: 5, paths: ['/a', '/b'], values: [1, { $obj: { $x: 1 } }] }] }), false)).toEqual(want);
    expect(msgpackDecoder().decode(encodeMsgpack({ type: 'batch', ts: 5, ids: [0, 1], values: [1, { $x: 1 }] }), true)).toEqual(want);
    expect(new FrameDecoder().decode(json({ type: 'batches', batches: [{ ts: 5, paths: [], values: [] }] }), false)).toEqual([{ type: 'batch', ts: 5, updates: [] }]);
  });

  it('refuses every malformed batch with TPD_BAD_FRAME', () => {
    const batches: unknown[] = [
      { ts: 1, updates: [['/a', 1]], paths: ['/a'], values: [1] }, // both layouts
      { ts: 1, updates: [], values: [] },
      { ts: 1, updates: null },
      { ts: 1, updates: 'x' },
      { ts: 1, paths: ['/a', '/b'], values: [1] }, // unequal
      { ts: 1, paths: ['/a'] },
      { ts: 1, values: [1] },
      { ts: 1, paths: '/a', values: [1] },
      { ts: 1, paths: ['/a'], values: { 0: 1, length: 1 } },
      { ts: 1, ids: [0], values: [1] }, // msgpack's key in JSON
      { ts: 1 },
      null,
      7,
    ];
    for (const b of batches) {
      expect(badFrame(() => new FrameDecoder().decode(json({ type: 'batches', batches: [b] }), false)), `json batches ${JSON.stringify(b)}`).toBe('TPD_BAD_FRAME');
      if (b !== null && typeof b === 'object') expect(badFrame(() => new FrameDecoder().decode(json({ type: 'batch', ...b }), false)), `json batch ${JSON.stringify(b)}`).toBe('TPD_BAD_FRAME');
    }
    expect(badFrame(() => new FrameDecoder().decode(json({ type: 'batches', batches: 'x' }), false))).toBe('TPD_BAD_FRAME');
    expect(badFrame(() => new FrameDecoder().decode(json({ type: 'batches' }), false))).toBe('TPD_BAD_FRAME');
    // JSON's key in msgpack, and both keys at once.
    expect(badFrame(() => msgpackDecoder().decode(encodeMsgpack({ type: 'batch', ts: 1, paths: ['/a'], values: [1] }), true))).toBe('TPD_BAD_FRAME');
    expect(badFrame(() => msgpackDecoder().decode(encodeMsgpack({ type: 'batch', ts: 1, ids: [0], paths: ['/a'], values: [1] }), true))).toBe('TPD_BAD_FRAME');
  });
});
