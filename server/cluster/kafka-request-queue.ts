/**
 * A fix of kafkajs 2.2.4's idle loop, applied to this process's kafkajs on import.
 *
 * Every broker connection of kafkajs has a RequestQueue whose scheduleCheckPendingRequests()
 * arms a timer to send requests held back by client-side throttling. With nothing pending and
 * no throttle (`throttledUntil` is -1), it still arms one, with a negative delay (so 1 ms),
 * and the check it runs schedules the next: each connection wakes the event loop about a
 * thousand times a second for nothing, forever (kafkajs issues #1556, #1704; unreleased
 * fixes #1667, #1768). That loop was most of an idle shard's CPU (docs/cluster.md,
 * "Capacity"): a consumer, its group coordinator and the producer of a sink each have one.
 *
 * The fixed method arms the timer only when a request waits (as before: at the throttle's
 * end, or CHECK_PENDING_REQUESTS_INTERVAL when the throttle is already over, the case
 * kafkajs #1532 fixed) or a throttle is still running. A request pushed later, or a
 * response, schedules a check again, as they always did.
 *
 * The method is replaced only when it loops (a probe queue, idle, arms a timer), so a
 * kafkajs that fixed it keeps its own.
 *
 * Also, each connection checks its in-flight requests for timeouts every
 * min(requestTimeout, 100 ms): ten wake-ups a second per connection, the next largest idle
 * cost. Checked every min(requestTimeout, REQUEST_TIMEOUT_CHECK_MS) instead, a request that
 * times out (30 s by default) is failed at most a second later than its timeout.
 */
import { createRequire } from 'node:module';

/** kafkajs/src/network/requestQueue/index.js: CHECK_PENDING_REQUESTS_INTERVAL. */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

/** How often a connection looks for requests past their timeout (kafkajs: 100 ms). */
export const REQUEST_TIMEOUT_CHECK_MS = 1_000;

interface RequestQueueLike {
  enforceRequestTimeout: boolean;
  requestTimeout: number;
  requestTimeoutIntervalId?: NodeJS.Timeout;
  inflight: Map<number, { sentAt: number; requestTimeout: number; timeoutRequest(): void }>;
  isConnected(): boolean;
  destroy(): void;
  scheduleRequestTimeoutCheck(): void;
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs' RequestQueue class (not part of its public API: found by path). */
export function requestQueueClass(): { prototype: RequestQueueLike } & (new (o: object) => RequestQueueLike) {
  const require = createRequire(import.meta.url);
  return require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueLike } & (new (o: object) => RequestQueueLike);
}

function scheduleCheckPendingRequests(this: RequestQueueLike): void {
  if (this.throttleCheckTimeoutId) return;
  let scheduleAt = this.throttledUntil - Date.now();
  if (this.pending.length > 0) scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL_MS;
  else if (scheduleAt <= 0) return;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, scheduleAt);
}

/** kafkajs' own check of in-flight requests (index.js scheduleRequestTimeoutCheck), at a coarser interval. */
function scheduleRequestTimeoutCheck(this: RequestQueueLike): void {
  if (!this.enforceRequestTimeout) return;
  this.destroy();
  this.requestTimeoutIntervalId = setInterval(() => {
    this.inflight.forEach((request) => {
      if (Date.now() - request.sentAt > request.requestTimeout) request.timeoutRequest();
    });
    if (!this.isConnected()) this.destroy();
  }, Math.min(this.requestTimeout, REQUEST_TIMEOUT_CHECK_MS));
}

/** A queue of no connection, with nothing pending and no throttle. */
export function idleRequestQueue(): RequestQueueLike {
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  return new (requestQueueClass())({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'tapedeck-probe', broker: 'probe:0', logger: quiet });
}

/** True when an idle queue arms a timer: the loop. */
export function loopsWhenIdle(): boolean {
  const q = idleRequestQueue();
  q.scheduleCheckPendingRequests();
  const armed = q.throttleCheckTimeoutId !== null;
  if (q.throttleCheckTimeoutId) clearTimeout(q.throttleCheckTimeoutId);
  q.throttleCheckTimeoutId = null;
  return armed;
}

/** The interval at which a queue checks its requests' timeouts (undefined: it does not). */
export function requestTimeoutCheckMs(requestTimeout: number): number | undefined {
  const q = idleRequestQueue();
  q.enforceRequestTimeout = true;
  q.requestTimeout = requestTimeout;
  const original = globalThis.setInterval;
  let ms: number | undefined;
  globalThis.setInterval = ((fn: () => void, every: number) => {
    ms = every;
    return original(fn, every);
  }) as typeof setInterval;
  try {
    q.scheduleRequestTimeoutCheck();
  } finally {
    globalThis.setInterval = original;
    q.destroy();
  }
  return ms;
}

/** True when the loaded kafkajs had the loop, which is now fixed. */
export const kafkaIdleLoopFixed: boolean = (() => {
  const proto = requestQueueClass().prototype;
  // The timeout check is replaced only where it is the known one (100 ms).
  if (requestTimeoutCheckMs(30_000) === 100) proto.scheduleRequestTimeoutCheck = scheduleRequestTimeoutCheck;
  if (!loopsWhenIdle()) return false;
  proto.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  return true;
})();
