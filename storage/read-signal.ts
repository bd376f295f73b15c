/**
 * A read that stops when its asker leaves (a server request whose client closed its
 * connection): the signal rides on the read's FetchWait (storage/archive.ts), which every
 * read of a cursor already passes down to the blocks it reads and the fetches it waits for.
 * Storage knows nothing of the server: a plain AbortSignal, whose reason the read throws.
 * A reader gives it as its cursor's onFetchWait:
 * `archive.cursor({ filter, onFetchWait: readsUntil(undefined, signal) })`.
 */
import type { FetchWait } from './archive.js';

/** `wait` (none: nobody is told) that also carries `signal` when there is one (see FetchWait). */
export function readsUntil(wait: FetchWait | undefined, signal: AbortSignal | undefined): FetchWait {
  const told = (event: Parameters<FetchWait>[0]): void => wait?.(event);
  return signal === undefined ? told : Object.assign(told, { signal });
}

/** Throws the reason of the read's signal once it is aborted (a check between two blocks). */
export function stopIfAborted(wait: FetchWait | undefined): void {
  wait?.signal?.throwIfAborted();
}
