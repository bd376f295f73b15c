/**
 * The committed horizon (docs/recording.md, "Committed horizon"): the archive's last batch
 * that a crash cannot take back, null for an empty archive. Query answers state the one
 * they were made at in the Tapedeck-Horizon header.
 */
import { formatTs } from '../protocol/time.js';

export const HORIZON_HEADER = 'tapedeck-horizon';

/** The committed horizon of an archive whose last batch is at `lastTs` (0: none yet). */
export function horizonOf(lastTs: number): number | null {
  return lastTs > 0 ? lastTs : null;
}

/** The Tapedeck-Horizon header's value: `<RFC 3339> <µs>`, or `none`. */
export function horizonHeader(us: number | null): string {
  return us === null ? 'none' : `${formatTs(us)} ${us}`;
}
