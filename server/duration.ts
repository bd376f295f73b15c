/**
 * Durations in config and queries: the one unit table lives in protocol/duration.ts (the time
 * grammar's offsets use it too); re-exported here for the server's config and sources.
 */
export { DURATION_SCHEMA, DURATION_STRING_PATTERN, durationMs, type Duration } from '../protocol/duration.js';
