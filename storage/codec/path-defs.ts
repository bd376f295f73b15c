/**
 * PATHS payloads: the path definitions a block introduces, as (id, first timestamp, path)
 * triples (docs/format.md, "PATHS").
 */
import { ByteReader, ByteWriter, putUvar } from './bytes.js';

/** Path definitions: (id, first timestamp, path) triples. */
export interface PathDef {
  id: number;
  path: string;
  firstTs: number;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** A path's byte length as a varint: at most this long (paths are far below 2^35 bytes). */
const PATH_LENGTH_VARINT_BYTES_MAX = 5;

export function encodePathDefs(defs: readonly PathDef[], baseTs: number): Uint8Array {
  const w = new ByteWriter(256 + defs.length * 32);
  w.uvar(defs.length);
  for (const d of defs) {
    w.uvar(d.id);
    w.svar(d.firstTs - baseTs);
    // The UTF-8 bytes go straight into the writer, past room for their length, and move
    // back once the length's varint is written (no array per path).
    const path = d.path;
    w.ensure(PATH_LENGTH_VARINT_BYTES_MAX + 3 * path.length);
    const at = w.pos + PATH_LENGTH_VARINT_BYTES_MAX;
    const { written } = utf8Encoder.encodeInto(path, w.buf.subarray(at));
    const bodyAt = putUvar(w.buf, w.pos, written);
    w.buf.copyWithin(bodyAt, at, at + written);
    w.pos = bodyAt + written;
  }
  return w.finish();
}

export function decodePathDefs(raw: Uint8Array, baseTs: number): PathDef[] {
  const r = new ByteReader(raw);
  const n = r.uvar();
  if (n > raw.length) r.fail('impossible path count');
  const out: PathDef[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.uvar();
    const firstTs = baseTs + r.svar();
    const len = r.uvar();
    const bytes = r.bytes(len);
    let path = '';
    try {
      path = utf8Decoder.decode(bytes);
    } catch {
      r.fail('path is not valid UTF-8');
    }
    out.push({ id, path, firstTs });
  }
  if (r.pos !== r.end) r.fail('trailing bytes');
  return out;
}
