/**
 * Bytes of upstream responses held at once by every poller of the process (http-json
 * sources, prometheus-scrape targets): each body is read up to sourceResponseBytesMax, and
 * all of them together up to sourceResponseBytesInFlightMax. Without the second bound, 1 024
 * scrape targets of one source (or as many sources) answering 64 MiB each at once held
 * 64 GiB. A body that would pass it fails its poll (the source's health says why; a scrape
 * records up = 0) and the bytes it held are given back.
 */
import { SERVER_LIMITS } from '../limits.js';

let held = 0;

/** One response's share of the budget: take() as its chunks arrive, release() once it is handled or failed. */
export class ResponseBytes {
  private mine = 0;

  /** Counts `n` more bytes of this response; false (nothing counted) when the process's budget would pass. */
  take(n: number): boolean {
    if (held + n > SERVER_LIMITS.sourceResponseBytesInFlightMax) return false;
    held += n;
    this.mine += n;
    return true;
  }

  release(): void {
    held -= this.mine;
    this.mine = 0;
  }
}

/** Bytes of responses held now, process-wide (for tests and /metrics). */
export function responseBytesHeld(): number {
  return held;
}
