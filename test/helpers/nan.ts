/**
 * NaNs the tests write on purpose: Prometheus' stale marker (a signalling NaN that V8's
 * optimised code may quiet, and that every layer must keep bit for bit).
 */
export const STALE_NAN = new Float64Array(new BigUint64Array([0x7ff0000000000002n]).buffer)[0] as number;

/**
 * NaNs an array of only doubles does not keep (protocol/value.ts valueArray): signalling
 * (the stale marker among them), quiet with payloads, negative. Held in a typed array, which
 * keeps them; a `[...]` literal of them would not.
 */
export const FRAGILE_NANS = new Float64Array(BigUint64Array.of(0x7ff0000000000001n, 0x7ff0000000000002n, 0x7ff8000000000001n, 0xfff8000000000000n, 0xfff0000000001234n, 0x7ff4000000000000n, 0x7fffffffffffffffn).buffer);

const bitsView = new DataView(new ArrayBuffer(8));

/** A number's 64 bits in hex (for comparing NaN payloads); a note for anything else. */
export function numberBits(v: unknown): string {
  if (typeof v !== 'number') return `not a number: ${String(v)}`;
  bitsView.setFloat64(0, v);
  return bitsView.getBigUint64(0).toString(16);
}
