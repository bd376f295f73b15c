/**
 * Values at the limits every ingest door takes (docs/values.md): arrays and objects nested
 * exactly valueDepthMax levels around hostile scalars, and the largest string and bytes an
 * NDJSON line holds (ingestLineBytesMax). Shared by the egress tests, which must give each
 * back equal.
 */
import { valueToJson } from '../../protocol/value-json.js';
import { VALUE_DEPTH_MAX, type Update, type Value } from '../../protocol/value.js';
import { SERVER_LIMITS } from '../../server/limits.js';

/** `levels` containers (arrays, objects keyed `__proto__`, one-key `$` objects the JSON form wraps in `$obj`) around `leaf`. */
export function nested(levels: number, leaf: Value, turn = 0): Value {
  let v = leaf;
  for (let i = 0; i < levels; i++) {
    const o: Record<string, Value> = {};
    switch ((i + turn) % 4) {
      case 0:
        v = [v];
        break;
      case 1:
        v = [1, v];
        break;
      case 2:
        Object.defineProperty(o, '__proto__', { value: v, enumerable: true, writable: true, configurable: true });
        v = o;
        break;
      default:
        o.$num = v;
        v = o;
    }
  }
  return v;
}

/** Values of exactly valueDepthMax levels around hostile scalars (bytes, NaN, -0, a bigint, a lone surrogate), under `prefix`. */
export function deepUpdates(prefix: string): Update[] {
  return [
    [`${prefix}/nan`, nested(VALUE_DEPTH_MAX, NaN)],
    [`${prefix}/bytes`, nested(VALUE_DEPTH_MAX, new Uint8Array([0, 255]), 1)],
    [`${prefix}/bigint`, nested(VALUE_DEPTH_MAX, 2n ** 70n, 2)],
    [`${prefix}/str`, nested(VALUE_DEPTH_MAX, '\ud800', 3)],
    [`${prefix}/zero`, nested(VALUE_DEPTH_MAX, -0, 2)],
  ];
}

/** The NDJSON line of one batch, values in their JSON form. */
export function ndjsonLine(ts: number, updates: readonly Update[]): string {
  return JSON.stringify({ ts, updates: Object.fromEntries(updates.map(([p, v]) => [p, valueToJson(v)])) });
}

/**
 * The largest string (its line exactly ingestLineBytesMax bytes) and the largest bytes (base64
 * in the line, at most that) one NDJSON line at `ts` takes, at `strPath` and `bytesPath`.
 */
export function largestValues(ts: number, strPath: string, bytesPath: string): { str: Update; bytes: Update } {
  const max = SERVER_LIMITS.ingestLineBytesMax;
  const strRoom = max - ndjsonLine(ts, [[strPath, '']]).length;
  const b64Room = max - ndjsonLine(ts, [[bytesPath, new Uint8Array(0)]]).length;
  const bytes = new Uint8Array(Math.floor(b64Room / 4) * 3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
  return { str: [strPath, `${'x'.repeat(strRoom - 2)}é`], bytes: [bytesPath, bytes] };
}
