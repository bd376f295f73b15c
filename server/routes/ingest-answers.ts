/**
 * What the push routes (NDJSON ingest and Prometheus remote write) share in their answers:
 * the `ack` parameter, the Retry-After of errors a retry can fix, and the message a client
 * may see for an error.
 */
import { ERRORS, TapedeckError } from '../../protocol/errors.js';
import { SERVER_LIMITS } from '../limits.js';
import { ACK_LEVELS, type AckLevel } from '../sources/push.js';

/** The `ack` query parameter (`dflt` when absent); anything but memory or durable is a bad argument. */
export function parseAckLevel(v: string | undefined, dflt: AckLevel): AckLevel {
  if (v === undefined) return dflt;
  if ((ACK_LEVELS as readonly string[]).includes(v)) return v as AckLevel;
  throw new TapedeckError('TPD_BAD_ARGUMENT', `ack must be memory or durable, got ${JSON.stringify(v).slice(0, 100)}`);
}

/**
 * Seconds a client should wait before retrying after `err`, for the errors a retry can fix:
 * the writer's own estimate when it gives one, else the route's backpressure wait or the
 * server's full-disk and closed waits.
 */
export function retryAfterS(err: TapedeckError, backpressureS: number): number | undefined {
  const ownMs = err.details?.retryAfterMs;
  if (typeof ownMs === 'number' && Number.isFinite(ownMs) && ownMs >= 0) return Math.max(1, Math.ceil(ownMs / 1000));
  if (err.code === 'TPD_BACKPRESSURE') return backpressureS;
  if (err.code === 'TPD_DISK_FULL') return SERVER_LIMITS.ingestDiskFullRetryAfterS;
  if (err.code === 'TPD_ARCHIVE_CLOSED') return SERVER_LIMITS.ingestClosedRetryAfterS;
  return undefined;
}

/** The message a client sees: I/O and internal failures may name paths, so they give only their meaning. */
export function clientMessage(err: TapedeckError): string {
  return err.code === 'TPD_IO' || err.code === 'TPD_INTERNAL' ? ERRORS[err.code].meaning : err.message;
}
