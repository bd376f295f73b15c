/** The storage engine's public surface for the layers above. */
export { Archive, wallClockUs, type ArchiveProblem, type FileEntry, type OpenOptions, type CommitEvent, type Logger } from './archive.js';
export { ArchiveWriter, type WriterStats } from './writer.js';
export { Cursor, SEEK_BATCHES_MAX, type CursorOptions, type SeekTarget } from './cursor.js';
export { STORAGE_DEFAULTS, STORAGE_LIMITS, PAGE_BYTES, type StorageOptions } from './limits.js';
export { verifyArchive, type VerifyReport } from './verify.js';
export { reindexArchive } from './reindex.js';
