/**
 * NaNs the tests write on purpose: Prometheus' stale marker (a signalling NaN that V8's
 * optimised code may quiet, and that every layer must keep bit for bit).
 */
export const STALE_NAN = new Float64Array(new BigUint64Array([0x7ff0000000000002n]).buffer)[0] as number;
