import { resolveConfig } from '../../server/config.js';
import { isTapedeckError } from '../../protocol/errors.js';

/** The TPD_BAD_CONFIG message resolveConfig refuses `doc` with; throws if it accepts it. */
export function problems(doc: unknown): string {
  try {
    resolveConfig(doc);
  } catch (err) {
    if (isTapedeckError(err, 'TPD_BAD_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('config was accepted');
}
