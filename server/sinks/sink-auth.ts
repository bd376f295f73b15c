/**
 * Which messages of the sink topic this recorder pair wrote (docs/ha.md, "Who wrote a
 * message"). A standby's promotion skips the buffered batches whose seq the topic already
 * holds, and the active skips a batch the topic holds; so what the tail follower believes
 * decides what is published. Anyone who can produce to the topic could otherwise make it
 * believe anything: a message with headers tpd-stream=X, tpd-seq=99999999999 would silence
 * stream X on the active and make a promotion drop every buffered batch of X.
 *
 * Each message the pair publishes carries `tpd-mac`: an HMAC-SHA256 of its identity
 * (stream, seq, fence, recorder) under a key the pair shares through Redis
 * (`tapedeck:<cluster>:sink-key`, made by the first member, restored by a running member
 * when Redis lost it: server/ha/coordinator.ts). The follower counts only messages whose
 * tag verifies under a key it knows; others are passed over and counted (`foreignMessages`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Keys kept for verification (the newest signs; older ones verify what was signed before a change). */
const KEYS_KEPT_MAX = 16;

/** A sink key as kept in Redis: 32 bytes, hex. */
export function isSinkKey(s: string | null | undefined): s is string {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}

export interface SignedIdentity {
  stream: string;
  seq: string;
  fence: string;
  recorder: string;
}

function tag(key: Buffer, id: SignedIdentity): Buffer {
  // JSON: no field can run into the next.
  return createHmac('sha256', key).update(JSON.stringify([id.stream, id.seq, id.fence, id.recorder])).digest();
}

export class SinkAuth {
  private readonly keys: Buffer[] = [];

  /** True once a key is known (before that nothing can be signed or verified). */
  get ready(): boolean {
    return this.keys.length > 0;
  }

  /** Adopts `hex` as the signing key (kept for verification too); false when it was the signing key already. */
  addKey(hex: string): boolean {
    if (!isSinkKey(hex)) return false;
    const k = Buffer.from(hex, 'hex');
    const at = this.keys.findIndex((x) => x.equals(k));
    if (at === this.keys.length - 1 && at >= 0) return false;
    if (at >= 0) this.keys.splice(at, 1);
    this.keys.push(k);
    if (this.keys.length > KEYS_KEPT_MAX) this.keys.shift();
    return true;
  }

  /** The tag of `id` under the signing key (hex), or undefined without a key. */
  sign(id: SignedIdentity): string | undefined {
    const k = this.keys[this.keys.length - 1];
    return k === undefined ? undefined : tag(k, id).toString('hex');
  }

  /** `mac` is the tag of `id` under a key this recorder knows. */
  verify(id: SignedIdentity, mac: string): boolean {
    if (!/^[0-9a-f]{64}$/.test(mac)) return false;
    const got = Buffer.from(mac, 'hex');
    return this.keys.some((k) => timingSafeEqual(tag(k, id), got));
  }
}
