/**
 * What a playback session needs from outside it: its limits, where the record is blind,
 * a logger, and counters. The manager provides them; tests may pass their own.
 */
import type { Coverage } from '../../protocol/coverage.js';

export interface SessionLimits {
  wsBufferHighBytes: number;
  frameBatchesMax: number;
  frameUpdatesMax: number;
  frameBytesMax: number;
  loopStepsPerTurnMax: number;
  stepBatchesPerYield: number;
  coverageItemsMax: number;
}

/** Where the record is blind (server/coverage.ts CoverageLog): read, and told of changes. */
export interface CoverageSource {
  between(startUs: number, endUs: number): Coverage;
  on(event: 'change', fn: () => void): unknown;
  off(event: 'change', fn: () => void): unknown;
}

/** The slice of pino a session logs through (a child logger bound to the session id). */
export interface SessionLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SessionEvents {
  pacingErrorMs(ms: number): void;
  framesSent(n: number, bytes: number): void;
}
