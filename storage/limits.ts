/**
 * Every limit and default of the storage engine in one place (units last in names).
 *
 * How they relate: a delta block is sealed at blockUpdatesTarget updates or
 * blockRawBytesTarget estimated bytes, whichever comes first; one batch may be larger than
 * a block target (it then fills a block of its own) but never larger than batchBytesMax,
 * which stays well under the format's hard BLOCK_PAYLOAD_BYTES_MAX (64 MiB). Sealed blocks
 * wait in the write queue; past writeQueueBytesHigh `append` returns false (slow down,
 * await drain()), past writeQueueBytesMax it throws TPD_BACKPRESSURE. Readers keep at most
 * decodedCacheUpdatesMax decoded updates in the shared block cache and at most
 * openFilesMax file handles.
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
  blockUpdatesTarget: 16_384,
  blockRawBytesTarget: 1024 * 1024,
  batchUpdatesMax: 1_000_000,
  batchBytesMax: 48 * 1024 * 1024,
  writeQueueBytesHigh: 64 * 1024 * 1024,
  writeQueueBytesMax: 256 * 1024 * 1024,
  decodedCacheUpdatesMax: 1_000_000,
  openFilesMax: 64,
  /** warm(): block tables of at most this many of the newest local files are loaded ahead of use. */
  warmFilesMax: 32,
  /** Bytes read per I/O while scanning frame headers (reindex, repair, verify). */
  scanChunkBytes: 1024 * 1024,
} as const;

export interface StorageOptions {
  imageFrequencyBytes: number;
  flushFrequencyPages: number;
  flushIntervalMs: number;
  rotateIntervalMs: number;
  rotateSizeBytes: number;
}
