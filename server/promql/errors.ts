/**
 * Errors of the Prometheus query API, in Prometheus' own terms: an `errorType` and the
 * HTTP status Prometheus gives it (web/api/v1/api.go). The routes answer them as
 * `{"status":"error","errorType":...,"error":...}`; the Tapedeck code of the one error
 * table (protocol/errors.ts) that fits goes in the `tapedeck-error-code` header.
 */
import type { ErrorCode } from '../../protocol/errors.js';

export type PromErrorType = 'bad_data' | 'execution' | 'timeout' | 'canceled' | 'internal' | 'unavailable';

/** The Tapedeck code of each Prometheus error type (a limit passes its own TPD_QUERY_LIMIT). */
const CODE_OF_TYPE: Record<PromErrorType, ErrorCode> = {
  bad_data: 'TPD_BAD_ARGUMENT', execution: 'TPD_QUERY_EXEC', timeout: 'TPD_QUERY_TIMEOUT', canceled: 'TPD_CANCELED', internal: 'TPD_INTERNAL', unavailable: 'TPD_FILE_UNAVAILABLE',
};

export const PROM_ERROR_STATUS: Record<PromErrorType, number> = {
  bad_data: 400,
  execution: 422,
  timeout: 503,
  canceled: 499,
  internal: 500,
  unavailable: 503,
};

export class PromError extends Error {
  constructor(
    readonly errorType: PromErrorType,
    message: string,
    readonly code: ErrorCode = CODE_OF_TYPE[errorType],
  ) {
    super(message);
    this.name = 'PromError';
  }

  get status(): number {
    return PROM_ERROR_STATUS[this.errorType];
  }
}

export const badData = (message: string): PromError => new PromError('bad_data', message);
export const execution = (message: string): PromError => new PromError('execution', message);
