/**
 * Every limit and default of the storage engine in one place (units last in names).
 *
 * How they relate: a delta block is sealed at blockUpdatesTarget updates or
 * blockRawBytesTarget estimated bytes, whichever comes first; one batch may be larger than
 * a block target (it then fills a block of its own) but never larger than batchBytesMax,
 * which stays well under the format's hard BLOCK_PAYLOAD_BYTES_MAX (64 MiB). Sealed blocks
 * wait in the write queue; past writeQueueBytesHigh `append` returns false (slow down,
 * await drain()), past writeQueueBytesMax it throws TPD_BACKPRESSURE. Readers keep at most
 * decodedCacheUpdatesMax decoded updates (and decodedCacheBytesMax of their weight) in the shared block cache and at most
 * openFilesMax file handles.
 *
 * Full disk (ENOSPC, EDQUOT, SQLITE_FULL): the writer keeps every frame it could not write
 * (and, until their commit, the frames it wrote, so a failed fdatasync can write them
 * again) and retries after diskFullRetryMs, doubling up to diskFullRetryMaxMs. Meanwhile
 * `append` takes batches until diskFullBufferBytesMax bytes of frames wait in memory, then
 * throws TPD_DISK_FULL; the bound is below writeQueueBytesHigh so that a producer hears
 * TPD_DISK_FULL rather than waiting on drain() or hitting TPD_BACKPRESSURE (the open block,
 * at most blockRawBytesTarget plus one batch, comes on top). A flush, rotate or whenDurable
 * that the full disk holds up is rejected with TPD_DISK_FULL after diskFullAckWaitMs; its
 * data stays in memory and is written when space returns.
 */
export const PAGE_BYTES = 4096;

export const STORAGE_DEFAULTS = {
  /** Write a full image after this many bytes of blocks (seed 003 default: 64 MiB). 0 = only at file start. */
  imageFrequencyBytes: 64 * 1024 * 1024,
  /** Commit after this many pages of new data (seed 003 default: 65534). */
  flushFrequencyPages: 65534,
  /** Commit at least this often while data is pending; 0 disables the timer (seed 003 default: 30 s). */
  flushIntervalMs: 30_000,
  /** Rotate `current` after this long; 0 = never. */
  rotateIntervalMs: 0,
  /** Rotate `current` once it holds this many bytes; 0 = no size limit. */
  rotateSizeBytes: 0,
} as const;

export const STORAGE_LIMITS = {
  /**
   * A delta block is sealed at this many updates ... (32 768 since the thirteenth session,
   * 16 384 before: docs/format.md "Block size, thirteenth session"; at 16 384 a block of
   * 10 000 paths holds one or two values a column and the column heads are most of its bytes.) A state after a seek sums a column's values up to
   * its position (storage/packed-prefix.ts), so its cost grows with this.
   */
  blockUpdatesTarget: 32_768,
  blockRawBytesTarget: 1024 * 1024,
  /**
   * A sealed file's compaction (storage/seal-compact.ts) joins its delta blocks into blocks
   * of at most this many updates (a writer's block that would pass it starts the next one;
   * one writer's block may alone exceed it) and of at most compactBlockRawBytesTarget raw
   * payload bytes. 131 072: bench:prom-write's batches re-encoded so take 1.67 bytes a sample
   * in DELTA frames, against 2.62 in the writer's blocks (docs/storage.md, "Compaction").
   */
  compactBlockUpdatesTarget: 131_072,
  /** See compactBlockUpdatesTarget: a joined block's raw payload stays well under BLOCK_PAYLOAD_BYTES_MAX (64 MiB). */
  compactBlockRawBytesTarget: 8 * 1024 * 1024,
  /**
   * A compaction that keeps more than this share of a file's bytes is thrown away and not
   * tried again (storage/compact-archive.ts): its larger blocks would make every seek and
   * state read in the file dearer for little saved. 0.75: bench:prom-write's files come to
   * about half; a file of random doubles to 0.82, where seek + state took twice as long.
   */
  compactKeptBytesRatioMax: 0.75,
  /**
   * A change of a file's places (a compaction swapped in by the running server,
   * storage/read-gate.ts) first waits this long for a moment when no read operation is in
   * flight, holding nobody up.
   */
  gateIdleWaitMs: 2_000,
  /**
   * Then it closes the gate (new read operations wait) and waits at most this long for those
   * in flight to finish; failing that, the gate reopens and the change is tried again later.
   * The longest a read waits for a change, besides the change itself.
   */
  gateDrainWaitMs: 200,
  /**
   * The running server compacts at most this many updates a second (storage/live-compact.ts),
   * between blocks, so that recording and reading go on (a compaction decodes and encodes:
   * about 1 M updates per CPU-second; this keeps it under half a core).
   */
  compactUpdatesPerS: 400_000,
  /** A swap given up (gateDrainWaitMs) is tried again after this long (storage/live-compact.ts). */
  compactSwapRetryMs: 5_000,
  /** Attempts to swap a compacted file in before the file is left as recorded (its compaction thrown away). */
  compactSwapTriesMax: 12,
  /** Sealed files waiting to be compacted by the running server (one is compacted at a time; more wait for the next start, which finds them). */
  compactQueueMax: 1_024,
  batchUpdatesMax: 1_000_000,
  batchBytesMax: 48 * 1024 * 1024,
  /**
   * PATHS and IMAGE frames (the paths a block or a file's dictionary defines; every path's
   * latest value) are cut into consecutive frames of at most this many payload bytes (an
   * upper bound counted before encoding; one value may make a part alone, up to
   * batchBytesMax), so neither reaches BLOCK_PAYLOAD_BYTES_MAX however many paths there are
   * (storage/frame-parts.ts).
   */
  framePartBytesTarget: 16 * 1024 * 1024,
  writeQueueBytesHigh: 64 * 1024 * 1024,
  writeQueueBytesMax: 256 * 1024 * 1024,
  decodedCacheUpdatesMax: 1_000_000,
  /**
   * ... and at most about this many bytes of decoded blocks (24 bytes an update and twice a
   * block's raw payload): counted in updates only, 300 blocks of one 1 MB string each were
   * 300 MB held, and a history read of them ran a 160 MB heap out of memory.
   */
  decodedCacheBytesMax: 64 * 1024 * 1024,
  /** Blocks evicted from the block cache kept findable by weak reference while a reader still holds them (so readers share them instead of decoding copies). */
  decodedWeakBlocksMax: 65_536,
  openFilesMax: 64,
  /** warm(): block tables of at most this many of the newest local files are loaded ahead of use. */
  warmFilesMax: 32,
  /**
   * How long the probe of a native addon build may take (a child process that loads it and
   * encodes one block, docs/native.md) before that build is passed over for the TypeScript
   * encoder: once a process, at the first archive opened for writing.
   */
  nativeProbeMs: 20_000,
  /** Coverage journal events kept when reading coverage.log (the newest; runs and outages are rare). */
  coverageEventsMax: 1_000_000,
  /** Largest |N| a cursor takes in seek({ batches: N }): each step reads a batch. Equal to PROTOCOL_LIMITS.seekStepsMax, the step a client may ask for. */
  seekBatchesMax: 100_000,
  /**
   * Batches a filtered cursor passes over (none of their updates match the filter) between two
   * yields to the event loop: reading on or stepping back to the next matching batch of a
   * rare path otherwise went through every cached block (up to decodedCacheUpdatesMax
   * updates, a third of a second and more) in one piece, holding the server.
   */
  passedBatchesPerYield: 4096,
  /** Bytes read per I/O while scanning frame headers (reindex, repair, verify). */
  scanChunkBytes: 1024 * 1024,
  /** Opens of a file racing its rotation's rename (`current` renamed on disk before its entry): tried again under the new name at most this many times. */
  rotationRaceOpenTries: 3,
  /** First retry of a write the full disk refused; later retries wait twice as long each, up to diskFullRetryMaxMs. */
  diskFullRetryMs: 1000,
  diskFullRetryMaxMs: 8000,
  /** Bytes of frames waiting in memory past which `append` throws TPD_DISK_FULL while the disk is full. */
  diskFullBufferBytesMax: 32 * 1024 * 1024,
  /** How long a flush / whenDurable waits on a full disk before it is rejected with TPD_DISK_FULL. */
  diskFullAckWaitMs: 5000,
  /**
   * Series reads (storage/series-read.ts) cut each file's delta blocks into chunks of this
   * many blocks; a chunk whose blocks are all committed never changes, so one series' samples
   * of it are cached as a unit. Smaller chunks waste less on a range's edges, larger ones
   * cost fewer cache entries.
   */
  seriesChunkBlocks: 16,
  /** Bytes of cached per-series samples of committed chunks (least recently used go first; ~16 bytes per numeric sample). */
  seriesCacheBytesMax: 256 * 1024 * 1024,
  /**
   * Per-series sidecars of sealed files (storage/series-index/): a build decodes this many
   * updates of a file's blocks at a time and writes one chunk per path of them, so its
   * memory is bounded (~40 bytes per update) and a path's chunk holds up to
   * seriesIndexSliceUpdatesMax / paths-per-block samples.
   */
  seriesIndexSliceUpdatesMax: 2_000_000,
  /**
   * Background builds decode at most this many updates a second (sealed files found at start
   * are many): decoding, not reading, is their cost (~2 M updates per CPU-second), so this
   * keeps a build to about half a core.
   */
  seriesIndexBuildUpdatesPerS: 1_000_000,
  /** A build writes its chunks in pieces of about this many bytes. */
  seriesIndexWriteBytes: 1024 * 1024,
  /** Verified sidecar indexes kept in memory (least recently used go; ~36 bytes per chunk: ~10 MB for a day of 10 000 series at 15 s). */
  seriesIndexOpenMax: 16,
  /** Chunks of one read closer than this are read in one I/O, of at most seriesIndexReadSpanBytesMax. */
  seriesIndexReadGapBytes: 64 * 1024,
  /** Bytes of one sidecar read (chunks read together stop at this span). */
  seriesIndexReadSpanBytesMax: 8 * 1024 * 1024,
  /**
   * Catalog (storage/catalog-paths.ts): paths per row of its dictionary table. A commit defining
   * new paths re-encodes the last row until it holds this many (about 0.5 ms for 1 024
   * paths of 100 bytes); larger rows compress a little better.
   */
  catalogPathsPerRowMax: 1024,
  /** The catalog checkpoints its WAL once it holds this many pages (SQLite's default: 1 000, 4 MiB). */
  catalogWalCheckpointPages: 64,
  /** A checkpoint that resets the WAL truncates its file to this size. */
  catalogWalBytesKept: 64 * 1024,
  /** After this many bytes of new paths (a bulk insert) the catalog checkpoints and truncates its WAL at once. */
  catalogBulkCheckpointBytes: 16 * 1024,
  /**
   * Cursor.nextColumns reads the frames of consecutive committed blocks in one I/O of at most
   * this many bytes (at least one block), held by the cursor until it has read past them.
   */
  cursorReadAheadBytes: 256 * 1024,
  /**
   * Bytes of sidecar chunks held in memory (storage/series-index/store.ts), whole sidecars,
   * least recently read go first: a sidecar that fits is read in one I/O at its first wide
   * read and its chunks are then sliced from memory, as from a mapped file (a day of 10 000
   * series at 15 s: 12.5 MB). A sidecar larger than this is read chunk span by chunk span.
   */
  seriesIndexHeldBytesMax: 128 * 1024 * 1024,
  /**
   * An archive decompresses the LZ4 payloads its column readers decode (Archive.payloadOf)
   * into one buffer reused block after block, grown up to this many bytes (a block of
   * blockUpdatesTarget numbers takes about 64 KB); a larger payload gets a buffer of its own.
   */
  payloadBufferBytesMax: 4 * 1024 * 1024,
} as const;

/** The full-disk limits a writer applies (STORAGE_LIMITS by default; ArchiveWriter.setDiskFullLimits changes them). */
export interface DiskFullLimits {
  retryMs: number;
  retryMaxMs: number;
  bufferBytesMax: number;
  ackWaitMs: number;
}

export interface StorageOptions {
  imageFrequencyBytes: number;
  flushFrequencyPages: number;
  flushIntervalMs: number;
  rotateIntervalMs: number;
  rotateSizeBytes: number;
}
