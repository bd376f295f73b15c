/**
 * Every message a Kafka source refuses is decided once (docs/kafka.md, "Refused messages"):
 * counted, named in a log line with its topic, partition and offset, and its offset committed
 * with the others, so that its partition moves on. A refusal is the input's fault and would
 * come back the same at every retry: a payload that does not decode, a time or a path the
 * archive cannot hold (found before the write), or a batch the writer refuses (too many
 * updates, too many bytes, a bad value or path). Thrown out of the fetch's handler instead,
 * kafkajs would fetch the same message again for ever: the partition would stall on it.
 *
 * A batch of several messages that the writer refuses is written again message by message
 * (writePieces), so that only the messages at fault are refused: a fetch can exceed
 * batchBytesMax although each of its messages fits.
 */
import type { Logger } from 'pino';
import { isTapedeckError, type TapedeckError } from '../../protocol/errors.js';
import type { Update } from '../../protocol/value.js';

/** How refusals are logged (KAFKA_SOURCE_LIMITS.refusalLogLinesPerSecond, refusalSummaryOffsetsMax). */
export interface RefusalLogLimits {
  refusalLogLinesPerSecond: number;
  refusalSummaryOffsetsMax: number;
}

/** The writer's refusals of the batch itself (the rest: disk full, backpressure, closed, I/O, are retried). */
const WRITE_REFUSALS = new Set(['TPD_BATCH_TOO_LARGE', 'TPD_BAD_ARGUMENT', 'TPD_BAD_PATH']);

export function isWriteRefusal(err: unknown): err is TapedeckError {
  return isTapedeckError(err) && WRITE_REFUSALS.has(err.code);
}

interface Summary {
  topic: string;
  partition: number;
  n: number;
  offsets: string[];
  last: string;
  codes: Set<string>;
}

/** Counts and logs a source's refused messages (see the file's comment). */
export class KafkaRefusals {
  private readonly log: Logger;
  private readonly stats: { decodeErrors: number };
  private readonly limits: RefusalLogLimits;
  private windowStartMs = 0;
  private linesInWindow = 0;
  private readonly summaries = new Map<string, Summary>();
  private timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, stats: { decodeErrors: number }, limits: RefusalLogLimits) {
    this.log = log;
    this.stats = stats;
    this.limits = limits;
  }

  /** One refused message: counted, and logged (alone, or in its partition's next summary line). */
  refuse(topic: string, partition: number, offset: string, err: unknown, path?: string): void {
    const n = ++this.stats.decodeErrors;
    // A refusal that is not a TapedeckError (explode's leafUpdatesMax) is a bad argument all the same.
    const code = isTapedeckError(err) ? err.code : 'TPD_BAD_ARGUMENT';
    const message = err instanceof Error ? err.message : String(err);
    const now = Date.now();
    if (now - this.windowStartMs >= 1000) {
      this.windowStartMs = now;
      this.linesInWindow = 0;
      this.flush();
    }
    if (this.linesInWindow < this.limits.refusalLogLinesPerSecond) {
      this.linesInWindow++;
      this.log.warn({ code, path, topic, partition, offset, refused: n }, `kafka payload refused: ${message.slice(0, 500)}`);
      return;
    }
    const key = `${topic}\0${partition}`;
    let s = this.summaries.get(key);
    if (!s) {
      s = { topic, partition, n: 0, offsets: [], last: offset, codes: new Set() };
      this.summaries.set(key, s);
    }
    s.n++;
    if (s.offsets.length < this.limits.refusalSummaryOffsetsMax) s.offsets.push(offset);
    s.last = offset;
    s.codes.add(code);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, 1000).unref();
  }

  /** Logs the summed refusals (also at stop: none goes unnamed). */
  flush(): void {
    for (const s of this.summaries.values()) {
      this.log.warn({ topic: s.topic, partition: s.partition, refusedMessages: s.n, offsets: s.offsets, firstOffset: s.offsets[0], lastOffset: s.last, codes: [...s.codes], refused: this.stats.decodeErrors },
        `kafka: ${s.n} more messages refused on ${s.topic} partition ${s.partition}, offsets ${s.offsets[0] ?? s.last} to ${s.last} (offsets committed)`);
    }
    this.summaries.clear();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }
}

/** The updates of one message, as a piece of a batch. */
export interface Piece {
  offset: string;
  updates: Update[];
  /** The message's time (µs), or undefined: no time of its own. */
  tsUs: number | undefined;
}

/**
 * Writes `pieces` (consecutive messages of a partition) as one batch through `write`, or as
 * several, cut before each message that updates a path the batch holds already (a key
 * repeated within one fetch): a batch holds each path once, as a pushed one must
 * (docs/recording.md), since the answers that write a batch as an object of path: value
 * (/history NDJSON, `tapedeck export`) would write the key twice and a JSON reader keep only
 * the last value. When the writer refuses a batch that holds several messages with updates,
 * they are written again message by message, and `refuse` decides each message refused
 * alone. Other errors are thrown (retried). Resolves with the last batch time recorded
 * (undefined: none).
 */
export async function writePieces(pieces: Piece[], write: (pieces: Piece[]) => Promise<number | undefined>, refuse: (p: Piece, err: TapedeckError) => void): Promise<number | undefined> {
  let lastTs: number | undefined;
  for (const run of pathOnceRuns(pieces)) lastTs = (await writeRun(run, write, refuse)) ?? lastTs;
  return lastTs;
}

/** `pieces` cut into consecutive runs in which no path is updated twice (one run when none repeats). */
export function pathOnceRuns(pieces: Piece[]): Piece[][] {
  // One message with updates (batch: message, or a fetch of one) repeats none of another's.
  let full = 0;
  for (const p of pieces) if (p.updates.length > 0 && ++full > 1) break;
  if (full <= 1) return [pieces];
  const runs: Piece[][] = [];
  let run: Piece[] = [];
  let paths = new Set<string>();
  for (const p of pieces) {
    if (run.length > 0 && p.updates.some((u) => paths.has(u[0]))) {
      runs.push(run);
      run = [];
      paths = new Set();
    }
    run.push(p);
    for (const u of p.updates) paths.add(u[0]);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

async function writeRun(pieces: Piece[], write: (pieces: Piece[]) => Promise<number | undefined>, refuse: (p: Piece, err: TapedeckError) => void): Promise<number | undefined> {
  const full = pieces.filter((p) => p.updates.length > 0);
  if (full.length === 0) return undefined;
  try {
    return await write(pieces);
  } catch (err) {
    if (!isWriteRefusal(err)) throw err;
    if (full.length === 1) {
      refuse(full[0] as Piece, err);
      return undefined;
    }
  }
  let lastTs: number | undefined;
  for (const p of full) {
    try {
      lastTs = (await write([p])) ?? lastTs;
    } catch (err) {
      if (!isWriteRefusal(err)) throw err;
      refuse(p, err);
    }
  }
  return lastTs;
}
