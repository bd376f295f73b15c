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
/** Order-2 residuals must stay within this for their zigzag to stay exact (< 2^53). */
export const RESIDUAL_ABS_MAX = 2 ** 51;
/** Decoded scaled integers past this are corruption: the writer keeps them within 2^51. */
export const SCALED_ABS_LIMIT = 2 ** 51;
