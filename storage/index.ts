/** The storage engine's public surface for the layers above. */
export { Archive, wallClockUs, type ArchiveProblem, type OpenOptions, type CommitEvent, type Logger, type FetchWait, type RemoteStore } from './archive.js';
export { readsUntil } from './read-signal.js';
export { FileList, isIndexed, type FileEntry } from './file-list.js';
export { ColdStorage, COLD_DEFAULTS, COLD_LIMITS, type ColdOptions, type ColdStats, type ColdEvent, type RetentionPolicy } from './cold.js';
export { HookRunner, HOOK_DEFAULTS, HOOK_LIMITS, HOOK_GET_DEFAULTS, HOOK_LIST_TIMEOUT_MS, type HookCommand, type HookPolicy } from './hooks.js';
export { ArchiveWriter, type WriterStats } from './writer.js';
export { Cursor, type CursorOptions, type SeekTarget } from './cursor.js';
export { STORAGE_DEFAULTS, STORAGE_LIMITS, PAGE_BYTES, type StorageOptions } from './limits.js';
export { verifyArchive, type VerifyReport } from './verify.js';
export { reindexArchive } from './reindex.js';
export { assertArchiveDir, notAnArchive } from './archive-dir.js';
