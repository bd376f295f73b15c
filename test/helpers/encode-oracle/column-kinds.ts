/**
 * What the column encoder (columns.ts) and decoder (column-decode.ts) share: the kind bytes
 * and the bounds of DECIMAL and PACKED columns (docs/format.md, "Column").
 */

/**
 * Kind bytes. DECIMAL_K + k is DECIMAL with its exponent in the kind byte (0x10..0x19);
 * PACKED + 16 x order + k likewise carries the prediction order and exponent (0x40..0x69).
 * The writer no longer produces DECIMAL (1); readers keep decoding it.
 */
export const ColumnKind = { MSGPACK: 0, DECIMAL: 1, FLOAT64: 2, XOR: 3, DECIMAL_K: 0x10, PACKED: 0x40 } as const;
export const PACKED_END = ColumnKind.PACKED + 3 * 16;

/** Largest decimal exponent tried: values with more than 9 decimals are not DECIMAL. */
export const DECIMAL_EXPONENT_MAX = 9;
export const POW10 = Array.from({ length: DECIMAL_EXPONENT_MAX + 1 }, (_, k) => 10 ** k);
/** A varint of a zigzagged delta is at most this long (|delta| <= 2^52). */
export const VARINT_BYTES_MAX = 8;
export const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
