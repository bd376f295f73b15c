/**
 * History answers against clients that stop reading: the cut both the local and the merged
 * (cluster) /api/v1/history apply (docs/recording.md: historyStallMs, historyReadBytesPerSMin).
 */
import { SERVER_LIMITS } from '../limits.js';

/** How long a consumer may take a chunk: stallMs plus the chunk's bytes at bytesPerSMin. */
export interface StallBound {
  stallMs: number;
  bytesPerSMin: number;
}

const HISTORY_STALL: StallBound = { get stallMs() { return SERVER_LIMITS.historyStallMs; }, get bytesPerSMin() { return SERVER_LIMITS.historyReadBytesPerSMin; } };

/**
 * Yields `chunks`, and calls `stalled` (with the chunk's bytes) when the consumer does not
 * take the next one in time after a chunk went out: historyStallMs plus the chunk's bytes at
 * historyReadBytesPerSMin, unless `bound` says otherwise (a shard's batches feed: its own).
 * The stream asks for a chunk once the socket has taken the one before, so a client that
 * stopped reading (or is gone without a word) is found, where its answer held the
 * connection, a cursor and the block it holds (a merged answer: every shard's stream) for ever.
 */
export async function* cutWhenStalled<T extends string | Uint8Array>(chunks: AsyncIterable<T>, stalled: (bytes: number) => void, bound: StallBound = HISTORY_STALL): AsyncGenerator<T> {
  for await (const c of chunks) {
    const bytes = typeof c === 'string' ? Buffer.byteLength(c) : c.byteLength;
    const timer = setTimeout(() => stalled(bytes), bound.stallMs + (bytes / bound.bytesPerSMin) * 1000);
    try {
      yield c;
    } finally {
      clearTimeout(timer);
    }
  }
}
