/**
 * The PACKED column's layout constants, shared by its encoder (packed-int.ts) and decoder
 * (packed-int-decode.ts); docs/format.md, "PACKED column".
 */

/** Widest packed residual; wider ones are exceptions (their high bits follow as varints). */
export const WIDTH_MAX = 32;
/** Columns with fewer residuals than this are planned without exceptions. */
export const SHORT_COLUMN_VALUES = 16;
/** Order 0 is planned only for columns whose first scaled value is smaller than this. */
export const ORDER0_FIRST_ABS_MAX = 1 << 12;
/** Widths up to this unpack with int32 shifts (unpackNarrow). */
export const FAST_WIDTH_MAX = 24;
/** Set in the width byte when an exception count follows. */
export const EXCEPTIONS_FLAG = 0x80;
/** Bit lengths of zigzagged residuals go up to 54 (|residual| <= 2^53). */
export const BITLEN_SLOTS = 56;
export const TWO_32 = 4294967296;
/**
 * 2^w for every width, an exception's unit: read from this table because V8 computes
 * `2 ** w` by a call to pow, which cost more than the rest of a short column's read.
 */
export const POW2: readonly number[] = Array.from({ length: WIDTH_MAX + 1 }, (_, w) => 2 ** w);
/** Order-2 residuals must stay within this for their zigzag to stay exact (< 2^53). */
export const RESIDUAL_ABS_MAX = 2 ** 51;
/** Decoded scaled integers past this are corruption: the writer keeps them within 2^51. */
export const SCALED_ABS_LIMIT = 2 ** 51;

/**
 * The larger magnitude of a PACKED body's first scaled values (s0, and s0 + d0 for order 2),
 * where a decoder's bound check starts. Not |s0| + |d0|: d0 = s1 - s0 reaches 2^52 between
 * values the writer keeps within 2^51 (s0 near 2^51 then a small s1), and such a column was
 * refused as corrupt by every reader once written.
 */
export function firstAbs(s0: number, d0: number, order: number): number {
  const a = s0 < 0 ? -s0 : s0;
  if (order !== 2) return a;
  const s1 = s0 + d0;
  const b = s1 < 0 ? -s1 : s1;
  return a > b ? a : b;
}
