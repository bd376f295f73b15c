/**
 * The payload of an all-number block written by Tapedeck's Node addon (native/tapedeck-node,
 * Rust: the encoder of native/column-encoder), byte for byte what encodeBatches' TypeScript
 * path writes; docs/native.md. Pure: the addon object comes from the caller
 * (storage/native-codec-file.ts loads it from disk). When it is not installed, or refuses a
 * block (timestamps that are not integers within 2^52 µs, path ids from 2^28), the
 * TypeScript encoder writes the block: archives do not depend on which one ran.
 */
import type { ByteWriter } from './bytes.js';
import { LITTLE_ENDIAN } from './column-kinds.js';
import type { FlatBatches } from './payload-encode.js';

/** native/tapedeck-node's encoderVersion() this code expects: a build that answers otherwise is stale. */
export const NATIVE_ENCODER_VERSION = 2;

/** What the addon exports (native/tapedeck-node/src/lib.rs). */
export interface NativePayloadAddon {
  /** NATIVE_ENCODER_VERSION of the build. */
  encoderVersion(): number;
  /** The payload's length; -1 refused; below -1, minus one more than the length needed. */
  encodeNumberPayload(ts: Float64Array, counts: Uint32Array, ids: Int32Array, vals: Float64Array, out: Uint8Array, latestNums?: Float64Array, latestKinds?: Uint8Array): number;
  /** The whole DELTA frame (frame.ts encodeFrame of that payload) in a new buffer; null when refused. */
  encodeNumberFrame(ts: Float64Array, counts: Uint32Array, ids: Int32Array, vals: Float64Array, firstTs: number, lastTs: number, latestNums?: Float64Array, latestKinds?: Uint8Array): Uint8Array | null;
  /** CRC32C of `data` continuing from `seed` (codec/crc.ts, installed after a probe). Version 2 on. */
  crc32c(data: Uint8Array, seed: number): number;
}

/** Every path's latest value, kept by the block builder: `kinds[id]` 1 when `nums[id]` holds it. */
export interface LatestNumbers {
  nums: Float64Array;
  kinds: Uint8Array;
}

let addon: NativePayloadAddon | undefined;
// Timestamps and counts of the block in typed arrays (the builder keeps them in arrays).
let tsScratch = new Float64Array(256);
let countScratch = new Uint32Array(256);

/** Installs (or, with undefined, removes) the addon; false when this host cannot use it (big-endian). */
export function installNativePayload(a: NativePayloadAddon | undefined): boolean {
  if (a !== undefined && (!LITTLE_ENDIAN || typeof a.encodeNumberPayload !== 'function' || typeof a.encodeNumberFrame !== 'function' || typeof a.encoderVersion !== 'function' || a.encoderVersion() !== NATIVE_ENCODER_VERSION)) {
    return false;
  }
  addon = a;
  return true;
}

/** Whether encodeBatches writes all-number blocks through the addon. */
export function nativePayloadInstalled(): boolean {
  return addon !== undefined;
}

/** An all-number block as encodeBatches takes it, its ids in the builder's Int32Array. */
export type NumberBlock = FlatBatches & { ids: Int32Array; values: Float64Array };

/**
 * The payload of `b` written by the addon into `w` from position 0, as a view valid until
 * `w` is written again; undefined when no addon is installed or it refused the block.
 */
export function encodeNumberPayloadNative(b: NumberBlock, w: ByteWriter): Uint8Array | undefined {
  const a = addon;
  const v = a === undefined ? undefined : typedViews(b);
  if (a === undefined || v === undefined) return undefined;
  w.reset();
  let len: number;
  try {
    len = a.encodeNumberPayload(v.ts, v.counts, v.ids, v.values, w.buf);
    if (len < -1) {
      w.ensure(-len - 1);
      len = a.encodeNumberPayload(v.ts, v.counts, v.ids, v.values, w.buf);
    }
  } catch {
    return giveUp();
  }
  if (len < 0) return undefined;
  w.pos = len;
  return w.buf.subarray(0, len);
}

/**
 * The whole DELTA frame of `b` from firstTs to lastTs, written by the addon (header,
 * payload LZ4-compressed when that saves 1/16, CRC32C): frame.ts encodeFrame of
 * encodeBatches' payload, byte for byte. With `latest`, the addon also sets there each
 * path's last value in the block (a path id past its arrays refuses the block). Undefined
 * when no addon is installed or it refused the block.
 */
export function encodeNumberFrameNative(b: NumberBlock, firstTs: number, lastTs: number, latest?: LatestNumbers): Uint8Array | undefined {
  const a = addon;
  const v = a === undefined ? undefined : typedViews(b);
  if (a === undefined || v === undefined) return undefined;
  try {
    return a.encodeNumberFrame(v.ts, v.counts, v.ids, v.values, firstTs, lastTs, latest?.nums, latest?.kinds) ?? undefined;
  } catch {
    return giveUp();
  }
}

/**
 * The addon threw (a Rust panic, caught at its boundary: never expected, its inputs are
 * checked): it is put aside for the process' life and the TypeScript encoder writes this
 * block and every later one, rather than fail an append whose batch is already in the block.
 */
function giveUp(): undefined {
  addon = undefined;
  return undefined;
}

/**
 * The block as the addon takes it: its timestamps and counts in the typed scratch, each
 * array cut to the block; undefined for a count that is not a uint32 (a typed array would
 * cut it: the TypeScript path then writes or refuses the block as it always has).
 */
function typedViews(b: NumberBlock): { ts: Float64Array; counts: Uint32Array; ids: Int32Array; values: Float64Array } | undefined {
  const nb = b.batchCount;
  if (tsScratch.length < nb) {
    tsScratch = new Float64Array(Math.max(nb, tsScratch.length * 2));
    countScratch = new Uint32Array(tsScratch.length);
  }
  for (let i = 0; i < nb; i++) {
    const n = b.counts[i] as number;
    if (!(n >= 0 && n <= 0xffff_ffff && Math.floor(n) === n)) return undefined;
    tsScratch[i] = b.ts[i] as number;
    countScratch[i] = n;
  }
  const nu = b.updateCount;
  return { ts: tsScratch.subarray(0, nb), counts: countScratch.subarray(0, nb), ids: b.ids.subarray(0, nu), values: b.values.subarray(0, nu) };
}
