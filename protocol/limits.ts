/**
 * Every limit of the protocol layer (what clients may send, whatever the transport) in one
 * place, units last.
 *
 * How they relate: a glob is at most globBytesMax bytes (UTF-8) and at most
 * globSegmentsMax `/`-separated segments; a spec (record.spec, a query's repeated `glob`,
 * a session filter) holds at most globsPerSpecMax globs. Matching one path against one glob
 * costs at most O(glob segments × path segments × segment length) (protocol/glob.ts), so
 * these three bound the work a hostile spec can ask per path: a path is at most pathCharsMax
 * characters, hence at most globsPerSpecMax × globSegmentsMax × pathCharsMax
 * character comparisons, and in practice far fewer (docs/globs.md).
 *
 * A time in the time grammar (protocol/time.ts, docs/time.md) is at most timeTextCharsMax
 * characters, which bounds the duration parser's loop; a batch step (`pos: "-5"`) moves at
 * most seekStepsMax batches, at most the cursor's own bound (STORAGE_LIMITS, storage/), so
 * every step a client may ask is one the cursor takes.
 */
export const PROTOCOL_LIMITS = {
  /** Longest glob, in UTF-8 bytes. */
  globBytesMax: 1024,
  /** Most `/`-separated segments in one glob (`/a/b` has two). */
  globSegmentsMax: 64,
  /** Most globs in one spec (record spec, query, session filter). */
  globsPerSpecMax: 256,
  /** Largest N in a session's batch step `pos: "+N"` / `"-N"` (or `"+Nb"` / `"-Nb"`). */
  seekStepsMax: 100_000,
  /**
   * Largest N of the `burst` action (the next N batches sent at once, unpaced). Unlike a
   * step, every batch of a burst goes to the client; the session sends it a frame per turn
   * under the socket's backpressure, so this bounds what one control asks, not memory.
   */
  burstBatchesMax: 10_000,
  /** Longest time text (RFC 3339, epoch, `now-5m`, `pos+30s`, `-5`), in characters. */
  timeTextCharsMax: 64,
  /**
   * Deepest nesting of arrays and objects a value may have. Every codec walks values
   * recursively; the bound keeps a hostile value (`[[[[...]]]]` a million deep) from
   * overflowing the stack. Telemetry values are shallow; 64 leaves ample room.
   */
  valueDepthMax: 64,
  /** Longest path, in UTF-16 code units. */
  pathCharsMax: 4096,
  /**
   * Most decimal digits of a bigint taken at ingest ({"$bigint"}, msgpack ext 2, a polled
   * API's integer literal). V8 reads and writes a bigint's decimal text in time growing
   * faster than its length (4 million digits: about 0.8 s to read, 1.7 s to write, on the
   * event loop), and every output writes it again; 4096 digits (about 13 600 bits) take
   * microseconds and hold any integer a telemetry value needs (int64 and uint64 have 20).
   */
  bigintDigitsMax: 4096,
  /**
   * Most parts of one Kafka message in parts (protocol/kafka-parts.ts: a sink batch larger
   * than its topic's max.message.bytes). The sink cuts no message into more (with parts of
   * at least KAFKA_SINK_DEFAULTS.partBytesMin, 1 KiB: 64 MiB); a reader refuses a set of more.
   */
  kafkaPartsPerSetMax: 65_536,
  /**
   * Largest WebSocket message a session stream's client takes (the TypeScript client's and
   * so `tapedeck play`'s ws maxPayload; ws's own default, 100 MiB, closed the stream with
   * 1009 and the client reconnected into the same frame). Derived from the largest frame the
   * server sends: a frame of several batches stays under PLAYBACK_DEFAULTS.frameBytesMax
   * (4 MiB); one batch goes whole, and a batch is at most what one archive block holds: a
   * raw payload of 64 MiB (BLOCK_PAYLOAD_BYTES_MAX, storage/codec/frame.ts), written at most
   * STORAGE_LIMITS.batchBytesMax (48 MiB, strings counted in the bytes they take) and batchUpdatesMax
   * (1 000 000) updates. Its msgpack frame adds at most 15 bytes an update (header, id,
   * float64): under 80 MiB. Its JSON frame writes a control character as 6 bytes (`\u0001`):
   * 48 M of them are 288 MiB, plus about 30 bytes and the path of each update. 512 MiB is
   * also about V8's longest string (2^29 - 24 characters), past which no JavaScript client
   * could parse a JSON frame. Not bounded by it (docs/playback.md, "Frame sizes"): a `state`
   * frame (every covered path with its value), a JSON batch of very many long paths.
   */
  streamFrameBytesMax: 512 * 1024 * 1024,
} as const;
