/** Extension types of the msgpack value codec (docs/values.md): protocol/value-msgpack.ts writes them, msgpack-reader.ts reads them. */
export const MsgpackExt = { UTF16: 1, BIGINT: 2 } as const;
