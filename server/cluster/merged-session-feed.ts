/**
 * One shard's batches for a merged session: a streamed GET /api/v1/shard/batches (exactly
 * as recorded, ./shard-batches.ts) from a position on, read one batch at a time (TCP holds the rest back: the
 * shard reads no further ahead than the socket's buffers). The stream ends at the shard's
 * committed horizon when it was asked; the feed is then `exhausted` until reopened from
 * where it stopped (a tailing session, once the shard's horizon moved). Closing it frees the
 * shard's side at once.
 *
 * Batches already received are decoded without waiting (ready()): a promise is made only
 * when the next batch needs bytes from the socket, about once per chunk, not per batch.
 */
import { SERVER_LIMITS } from '../limits.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { openShard, queryString, withinMs } from './fanout.js';
import { ShardBatchDecoder, type ShardBatch } from './shard-batches.js';

export class ShardFeed {
  /** The next batch, read and not yet taken. */
  head: ShardBatch | null = null;
  /** The stream ended: every batch up to `horizonUs` (as of its request) was read. */
  exhausted = false;
  /** The shard's committed horizon its last stream was made at (null: empty archive). */
  horizonUs: number | null = null;
  /** False for a shard that records nothing: its archive is final. */
  recording = true;
  /** The next batch asked for is at or after this time (µs). */
  private fromUs: number;
  private chunks: AsyncIterator<Buffer> | undefined;
  private decoder: ShardBatchDecoder | undefined;
  private abort: AbortController | undefined;
  /** Bumped by release(): a read that was under way when it came is thrown away and redone. */
  private generation = 0;

  /** `idOf`: the merged path table's id of a path. */
  constructor(private readonly directory: ShardDirectory, readonly shard: ShardInfo, fromUs: number, private readonly globs: readonly string[], private readonly idOf: (path: string) => number) {
    this.fromUs = fromUs;
  }

  /**
   * True when the head is there or the stream ended, from the bytes already received (no
   * wait); false when peek() must read the socket. Throws a shard fault as peek() does.
   */
  ready(): boolean {
    if (this.head || this.exhausted) return true;
    const b = this.decoder?.next();
    if (!b) return false;
    this.head = b;
    return true;
  }

  /**
   * The next batch (null: the stream ended); opens the stream first when needed. A stream
   * the shard cut while it was not read (clusterShardFeedStallMs: a paused or slow session)
   * is opened again from the position, once per call; a shard that is gone fails to open.
   */
  async peek(): Promise<ShardBatch | null> {
    let deadline: number | undefined;
    let reopened = false;
    for (;;) {
      if (this.ready()) return this.head;
      const gen = this.generation;
      let r: IteratorResult<Buffer>;
      try {
        if (!this.chunks) await this.open(gen);
        if (gen !== this.generation) {
          deadline = undefined; // a new stream: its record's time starts with it
          continue;
        }
        const chunks = this.chunks as AsyncIterator<Buffer>;
        // Each chunk within the record's time: a shard that dribbles its batch is lost.
        deadline ??= Date.now() + SERVER_LIMITS.clusterShardRecordMs;
        const abort = this.abort;
        r = await withinMs(() => chunks.next(), deadline - Date.now(), (e) => abort?.abort(e));
      } catch (err) {
        if (gen !== this.generation) {
          deadline = undefined; // released under the read (the client left): read again when asked, on a new stream's time
          continue;
        }
        if (!reopened && this.chunks !== undefined && isCut(err)) {
          reopened = true;
          this.release();
          deadline = undefined;
          continue;
        }
        throw err;
      }
      if (gen !== this.generation) {
        deadline = undefined;
        continue;
      }
      if (r.done) {
        this.decoder?.end();
        this.exhausted = true;
        this.release();
        return null;
      }
      this.decoder?.push(r.value);
    }
  }

  /** Takes the head: the next stream (if one is opened) starts after it. */
  take(): ShardBatch {
    const b = this.head as ShardBatch;
    this.head = null;
    this.fromUs = b.ts + 1;
    return b;
  }

  /** Reads again from where it stopped (the shard's horizon moved on). */
  reopen(): void {
    this.release();
    this.exhausted = false;
  }

  /** Closes the stream, keeping the position; the next peek opens a new one. */
  release(): void {
    this.generation++;
    this.abort?.abort();
    this.abort = undefined;
    void this.chunks?.return?.(undefined).catch(() => undefined);
    this.chunks = undefined;
    this.decoder = undefined;
  }

  /** Opens the stream for generation `gen`; one released while it opened is closed, not kept. */
  private async open(gen: number): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const path = '/api/v1/shard/batches' + queryString({ glob: this.globs.length > 0 ? this.globs : undefined, from: this.fromUs });
    const s = await openShard(this.directory, this.shard, path, abort.signal);
    if (gen !== this.generation) {
      abort.abort();
      return;
    }
    this.horizonUs = s.horizonUs;
    this.recording = s.recording;
    this.decoder = new ShardBatchDecoder(SERVER_LIMITS.clusterShardLineCharsMax, this.idOf, this.fromUs);
    this.chunks = (s.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }
}

/** The shard closed or reset the connection of an open stream (not a timeout of ours, not malformed bytes). */
function isCut(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET';
}
