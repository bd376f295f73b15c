import { describe, expect, it } from 'vitest';
import { decodeBatches, encodeBatches, decodePathDefs, encodePathDefs } from '../storage/codec/payload.js';
import { deflateRawSync } from 'node:zlib';
import { compressSync } from 'lz4-napi';
import { decodeFrameHeader, encodeFrame, openFrame, BlockType, Codec, FRAME_HEADER_BYTES } from '../storage/codec/frame.js';
import { decodeHeader, encodeHeader, encodeSlot, slotOffset, HEADER_BYTES } from '../storage/codec/header.js';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { crc32c } from '../storage/codec/crc.js';
import { isTapedeckError } from '../protocol/errors.js';
import { fabricBatches, flattenBatches, randomBatches, rng } from './helpers/workload.js';

function expectSameValue(a: unknown, b: unknown): void {
  if (typeof a === 'number' && typeof b === 'number') {
    expect(Object.is(a, b)).toBe(true);
  } else if (a instanceof Uint8Array) {
    expect(b).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(b as Uint8Array).equals(Buffer.from(a))).toBe(true);
  } else {
    expect(b).toStrictEqual(a);
  }
}

describe('varints', () => {
  it('round-trips every magnitude up to 2^53, signed and unsigned', () => {
    const w = new ByteWriter(8);
    const xs = [0, 1, 127, 128, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 2 ** 52, 2 ** 53];
    for (const x of xs) w.uvar(x);
    for (const x of xs) { w.svar(Math.floor(x / 2)); w.svar(-Math.floor(x / 2)); }
    const r = new ByteReader(w.finish());
    for (const x of xs) expect(r.uvar()).toBe(x);
    for (const x of xs) { expect(r.svar()).toBe(Math.floor(x / 2)); expect(r.svar()).toBe(-Math.floor(x / 2) || 0); }
  });
});

describe('batch payload', () => {
  it('keeps a large integer next to a fine decimal in one column exact (no scaled overflow)', () => {
    // 486164504320 is exact at exponent 0, 414434.329373762 at 9: at 9 the integer would scale
    // past 2^51. Such a column must fall back to float64, not write an undecodable block.
    for (const values of [[414434.329373762, 486164504320], [486164504320, 0.5, 414434.329373762, -3]]) {
      const ids = values.map(() => 0);
      const flat = { ts: [1_700_000_000_000_000], counts: [values.length], ids, values, batchCount: 1, updateCount: values.length };
      const d = decodeBatches(encodeBatches(flat), flat.ts[0] as number);
      for (let i = 0; i < values.length; i++) expectSameValue(values[i], d.values[i]);
    }
  });

  it('round-trips random workloads bit-exact, batch boundaries kept', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const batches = randomBatches(seed, 200);
      const { flat } = flattenBatches(batches);
      const raw = encodeBatches(flat);
      const d = decodeBatches(raw, flat.ts[0] as number);
      expect(Array.from(d.ts)).toEqual(flat.ts);
      expect(Array.from(d.counts)).toEqual(flat.counts);
      expect(Array.from(d.ids)).toEqual(flat.ids);
      for (let i = 0; i < flat.values.length; i++) expectSameValue(flat.values[i], d.values[i]);
    }
  });

  it('stores the fabric workload in under 2 bytes per update', () => {
    const batches = [...fabricBatches(7, 64, 64)];
    const { flat } = flattenBatches(batches);
    const raw = encodeBatches(flat);
    expect(raw.length / flat.updateCount).toBeLessThan(2);
    const d = decodeBatches(raw, flat.ts[0] as number);
    expect(d.values).toEqual(flat.values);
  });

  it('rejects truncated and garbage payloads with TPD_CORRUPT_BLOCK, never a crash', () => {
    const { flat } = flattenBatches(randomBatches(3, 50));
    const raw = encodeBatches(flat);
    let rejected = 0;
    for (let cut = 0; cut < raw.length; cut += Math.max(1, raw.length >> 6)) {
      try {
        decodeBatches(raw.subarray(0, cut), 0);
      } catch (err) {
        expect(isTapedeckError(err, 'TPD_CORRUPT_BLOCK')).toBe(true);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('decodes randomly damaged payloads or rejects them with TPD_CORRUPT_BLOCK, never any other error', () => {
    // The frame's CRC32C catches damage first; this is the decoder's own guard behind it.
    const r = rng(99);
    let rejected = 0;
    let decoded = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const { flat } = flattenBatches(randomBatches(seed, 30));
      const raw = Uint8Array.from(encodeBatches(flat));
      for (let k = 0; k < 200; k++) {
        const bad = Uint8Array.from(raw);
        const flips = 1 + Math.floor(r() * 4);
        for (let f = 0; f < flips; f++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
        // Sometimes also cut the end or append junk.
        const cut = r() < 0.3 ? bad.subarray(0, Math.floor(r() * bad.length)) : bad;
        const junk = r() < 0.2 ? Uint8Array.from([...cut, ...Array.from({ length: 16 }, () => Math.floor(r() * 256))]) : cut;
        try {
          decodeBatches(junk, 0);
          decoded++;
        } catch (err) {
          expect(isTapedeckError(err, 'TPD_CORRUPT_BLOCK'), String(err)).toBe(true);
          rejected++;
        }
      }
    }
    expect(rejected + decoded).toBe(2000);
    expect(rejected).toBeGreaterThan(0);
  });

  it('round-trips path definitions', () => {
    const defs = [{ id: 0, path: '/a/b', firstTs: 10 }, { id: 7, path: '/ü/ñ', firstTs: 99 }];
    expect(decodePathDefs(encodePathDefs(defs, 10), 10)).toEqual(defs);
  });
});

describe('frames', () => {
  it('compresses when it pays and detects a flipped byte anywhere', () => {
    const raw = new Uint8Array(4000).fill(65);
    const f = encodeFrame({ type: BlockType.DELTA, firstTs: 5, lastTs: 9, batches: 2, updates: 3 }, raw);
    expect(f.length).toBeLessThan(raw.length);
    const { header, raw: back } = openFrame(f, 'x');
    expect(header).toMatchObject({ type: BlockType.DELTA, firstTs: 5, lastTs: 9, batches: 2, updates: 3 });
    expect(Buffer.from(back).equals(Buffer.from(raw))).toBe(true);
    for (let i = 0; i < f.length; i++) {
      if (i >= 44 && i < FRAME_HEADER_BYTES) continue; // reserved bytes
      const g = f.slice();
      g[i] = (g[i] as number) ^ 0x10;
      expect(() => openFrame(g, 'x'), `byte ${i}`).toThrow();
    }
  });

  it('stores PATHS payloads with DEFLATE, smaller than LZ4, and detects a flipped byte anywhere', () => {
    const defs = Array.from({ length: 2000 }, (_, i) => ({ id: i, path: `/prom/node_network_receive_bytes_total/device=eth${i % 4}/instance=host-${String(i >> 2).padStart(3, '0')}.dc1.example.net:9100/job=node`, firstTs: 1_700_000_000_000_000 + i }));
    const raw = encodePathDefs(defs, 1_700_000_000_000_000);
    const f = encodeFrame({ type: BlockType.PATHS, firstTs: 1_700_000_000_000_000, lastTs: 1_700_000_000_001_999, batches: 0, updates: defs.length }, raw);
    expect(f[5]).toBe(Codec.DEFLATE);
    expect(f.length - FRAME_HEADER_BYTES).toBeLessThan(compressSync(Buffer.from(raw)).length * 0.75);
    const { header, raw: back } = openFrame(f, 'x');
    expect(header).toMatchObject({ type: BlockType.PATHS, codec: Codec.DEFLATE, rawBytes: raw.length, updates: 2000 });
    expect(decodePathDefs(back, header.firstTs)).toEqual(defs);
    for (let i = 0; i < f.length; i += 7) {
      if (i >= 44 && i < FRAME_HEADER_BYTES) continue; // reserved bytes
      const g = f.slice();
      g[i] = (g[i] as number) ^ 0x04;
      expect(() => openFrame(g, 'x'), `byte ${i}`).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_BLOCK' }));
    }
  });

  it('rejects a DEFLATE payload that checks but does not inflate to its declared length, bombs included', () => {
    const meta = { type: BlockType.PATHS, firstTs: 1, lastTs: 1, batches: 0, updates: 1 };
    const cases: Array<[string, Buffer, number]> = [
      ['not deflate', Buffer.from([0xff, 0xfe, 0xfd, 0xfc]), 100],
      ['shorter than declared', deflateRawSync(Buffer.alloc(50, 7)), 100],
      ['longer than declared (a bomb)', deflateRawSync(Buffer.alloc(32 * 1024 * 1024)), 100],
    ];
    for (const [name, stored, rawBytes] of cases) {
      // A frame made by hand, its CRC32C right: what a hostile or buggy writer could leave.
      const f = encodeFrame(meta, new Uint8Array(stored), false);
      const view = new DataView(f.buffer);
      f[5] = Codec.DEFLATE;
      view.setUint32(12, rawBytes, true);
      view.setUint32(40, crc32c(f.subarray(FRAME_HEADER_BYTES), crc32c(f.subarray(0, 40))), true);
      expect(() => openFrame(f, 'x'), name).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_BLOCK' }));
    }
  });

  it('compresses a payload that LZ4 shrinks by a sixteenth (an eighth was required before)', () => {
    // Incompressible bytes with a run of repeats worth about 1/10 of the payload.
    const r = rng(9);
    const raw = Uint8Array.from({ length: 20_000 }, (_, i) => (i < 2000 ? 0 : Math.floor(r() * 256)));
    const f = encodeFrame({ type: BlockType.DELTA, firstTs: 5, lastTs: 9, batches: 2, updates: 3 }, raw);
    expect(f[5]).toBe(Codec.LZ4);
    expect(Buffer.from(openFrame(f, 'x').raw).equals(Buffer.from(raw))).toBe(true);
  });

  it('reports a bad magic as a message, not an exception', () => {
    expect(typeof decodeFrameHeader(new Uint8Array(48))).toBe('string');
  });
});

describe('file header', () => {
  it('takes the newest valid commit slot and survives a torn slot write', () => {
    const h = encodeHeader({ version: 1, archiveId: '0123456789abcdef', seq: 3, createdUs: 1_700_000_000_000_000 });
    h.set(encodeSlot({ generation: 1, committedBytes: 500 }), slotOffset(1));
    expect(decodeHeader(h)).toMatchObject({ seq: 3, archiveId: '0123456789abcdef', commit: { generation: 1, committedBytes: 500 } });
    h.set(encodeSlot({ generation: 2, committedBytes: 900 }), slotOffset(2));
    h[slotOffset(2) + 3] = (h[slotOffset(2) + 3] as number) ^ 0xff; // torn write of generation 2
    expect(decodeHeader(h).commit).toEqual({ generation: 1, committedBytes: 500 });
  });

  it('rejects foreign files and newer versions with stable codes; a flipped version byte is a corrupt header', () => {
    expect(() => decodeHeader(new TextEncoder().encode('not an archive at all, just text, long enough to be a header.....................................'))).toThrow(expect.objectContaining({ code: 'TPD_NOT_AN_ARCHIVE_FILE' }));
    const h = encodeHeader({ version: 1, archiveId: '0123456789abcdef', seq: 0, createdUs: 0 });
    const view = new DataView(h.buffer);
    view.setUint16(8, 9, true);
    expect(() => decodeHeader(h)).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_HEADER' }));
    // A newer writer's header: its checksum covers the new version.
    view.setUint32(40, crc32c(h.subarray(0, 40)), true);
    expect(() => decodeHeader(h)).toThrow(expect.objectContaining({ code: 'TPD_FORMAT_VERSION' }));
    expect(HEADER_BYTES).toBe(96);
  });
});
