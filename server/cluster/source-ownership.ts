/**
 * The ownership check attached to a push-like source in a cluster (set by server/main.ts,
 * read by the route that feeds the source): a source object carries no cluster field of
 * its own, so the link is kept beside it, weakly.
 */
import type { OwnershipCheck } from '../sources/push.js';

const CHECKS = new WeakMap<object, OwnershipCheck>();

export function setOwnershipCheck(source: object, check: OwnershipCheck): void {
  CHECKS.set(source, check);
}

export function ownershipCheckOf(source: object): OwnershipCheck | undefined {
  return CHECKS.get(source);
}
