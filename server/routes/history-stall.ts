/**
 * History answers against clients that stop reading: the cut both the local and the merged
 * (cluster) /api/v1/history apply (docs/recording.md: historyStallMs, historyReadBytesPerSMin).
 */
import { SERVER_LIMITS } from '../limits.js';

/**
 * Yields `chunks`, and calls `stalled` when the consumer does not take the next one in time
 * after a chunk went out: historyStallMs plus the chunk's bytes at historyReadBytesPerSMin.
 * The stream asks for a chunk once the socket has taken the one before, so a client that
 * stopped reading (or is gone without a word) is found, where its answer held the
 * connection, a cursor and the block it holds (a merged answer: every shard's stream) for ever.
 */
export async function* cutWhenStalled(chunks: AsyncIterable<string | Uint8Array>, stalled: () => void): AsyncGenerator<string | Uint8Array> {
  for await (const c of chunks) {
    const bytes = typeof c === 'string' ? Buffer.byteLength(c) : c.byteLength;
    const timer = setTimeout(stalled, SERVER_LIMITS.historyStallMs + (bytes / SERVER_LIMITS.historyReadBytesPerSMin) * 1000);
    try {
      yield c;
    } finally {
      clearTimeout(timer);
    }
  }
}
