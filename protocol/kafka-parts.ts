/**
 * A Kafka message in parts (docs/kafka.md, "A batch larger than the topic takes"): the Kafka
 * sink publishes a batch whose one message (key: "stream") is larger than its topic takes
 * (max.message.bytes) as n consecutive messages of the same key, partition, timestamp and
 * identity headers (tpd-stream, tpd-seq, tpd-fence, tpd-recorder, tpd-mac), each carrying a
 * slice of the message's value in order and two headers of its own:
 *
 * - `tpd-part`: `i/n`, 1 ≤ i ≤ n, 2 ≤ n ≤ partsPerSetMax, decimal without leading zeros;
 * - `tpd-sum`: the SHA-256 (hex, lower case) of the whole value.
 *
 * A reader concatenates parts 1..n of one set (same identity, n and sum), in order, and
 * checks the sum: the result is the message as it would have been sent whole. Parts of one
 * set are consecutive among the messages of that producer; another producer's messages may
 * fall between them. Pure functions and one pure state machine (PartAssembler); no I/O.
 */
import { createHash } from 'node:crypto';
import { TapedeckError } from './errors.js';

/**
 * `part`, `sum`: a message in parts (above). `msg`: with the sink's key "path" a batch is one
 * message per update, each with `tpd-msg` = `k/n` (1-based, n > 1): the batch is on the
 * topic once its n-th message is (the sink sends them in order, each request after the last
 * one's acknowledgement).
 */
export const KAFKA_PART_HEADERS = { part: 'tpd-part', sum: 'tpd-sum', msg: 'tpd-msg' } as const;

/** The identity headers a part repeats (with tpd-mac); a set is one batch of one producer. */
const IDENTITY_HEADERS = ['tpd-stream', 'tpd-seq', 'tpd-fence', 'tpd-recorder'] as const;

export type PartHeaders = Record<string, string | Buffer | Array<string | Buffer> | undefined>;

export function headerText(h: PartHeaders | undefined, name: string): string | undefined {
  const v = h?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : String(first);
}

export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** `value` cut into slices of at most `partBytes`, with each one's tpd-part and tpd-sum headers. */
export function splitParts(value: Uint8Array, partBytes: number): Array<{ value: Buffer; headers: Record<string, string> }> {
  const n = Math.max(1, Math.ceil(value.length / partBytes));
  const sum = sha256Hex(value);
  const all = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Array.from({ length: n }, (_, k) => ({
    value: all.subarray(k * partBytes, Math.min(value.length, (k + 1) * partBytes)),
    headers: { [KAFKA_PART_HEADERS.part]: `${k + 1}/${n}`, [KAFKA_PART_HEADERS.sum]: sum },
  }));
}

/** `k/n` with k = n, or no such header. */
function lastOrNone(text: string | undefined): boolean {
  if (text === undefined) return true;
  const m = /^([0-9]+)\/([0-9]+)$/.exec(text);
  return m !== null && m[1] === m[2];
}

/** A message completes its batch: its tpd-part and tpd-msg, where it has them, say it is the last. */
export function completesBatch(h: PartHeaders | undefined): boolean {
  return lastOrNone(headerText(h, KAFKA_PART_HEADERS.part)) && lastOrNone(headerText(h, KAFKA_PART_HEADERS.msg));
}

export interface PartOf {
  i: number;
  n: number;
  sum: string;
  /** The set's identity: its batch identity headers, n and sum. */
  set: string;
}

/** The part a message is (undefined: a whole message), or the TapedeckError refusing a malformed part header. */
export function partOf(h: PartHeaders | undefined, partsPerSetMax: number): PartOf | undefined {
  const part = headerText(h, KAFKA_PART_HEADERS.part);
  if (part === undefined) return undefined;
  const m = /^([1-9][0-9]{0,9})\/([1-9][0-9]{0,9})$/.exec(part);
  const sum = headerText(h, KAFKA_PART_HEADERS.sum) ?? '';
  const i = Number(m?.[1]);
  const n = Number(m?.[2]);
  if (!m || i > n || n < 2 || n > partsPerSetMax || !/^[0-9a-f]{64}$/.test(sum)) {
    throw partsError(`a malformed part header (tpd-part ${JSON.stringify(part.slice(0, 40))}, tpd-sum ${JSON.stringify(sum.slice(0, 80))}; parts are i/n with 2 ≤ n ≤ ${partsPerSetMax} and a SHA-256)`);
  }
  return { i, n, sum, set: JSON.stringify([...IDENTITY_HEADERS.map((k) => headerText(h, k) ?? null), n, sum]) };
}

export function partsError(why: string): TapedeckError {
  return new TapedeckError('TPD_KAFKA_PARTS', `message in parts refused: ${why}`);
}

export interface PartLimits {
  /** Most parts in one set. */
  partsPerSetMax: number;
  /** Bytes of parts held (sets not complete yet) over all partitions; past it the oldest sets are refused. */
  partsHeldBytesMax: number;
  /** A set whose last part has not come within this many messages of its partition after its first is refused. */
  partSetSpanMessagesMax: number;
}

/** One refused message of a set (or a part that belongs to none): its offset and why. */
export interface PartRefusal {
  partition: string;
  offsets: string[];
  err: TapedeckError;
}

interface OpenSet {
  id: string;
  part: PartOf;
  offsets: string[];
  values: Buffer[];
  bytes: number;
  /** The partition's message count when the first part came. */
  startAt: number;
  /** Sets begun before it, in all partitions (the oldest goes first past partsHeldBytesMax). */
  order: number;
}

interface PartitionState {
  seen: number;
  sets: Map<string, OpenSet>;
}

/**
 * Assembles the parts of the messages of several partitions (a Kafka source's). take()
 * returns a whole message's value: a message that is not a part, or the last part of a
 * complete set whose sum holds (then with the offset of its first part). A part that
 * cannot be assembled (malformed, out of order, without its first parts, a set that never
 * completes within the limits, a sum that does not hold) is refused through `refuse`, once
 * per message, never silently. heldFrom() says where the partition's earliest held set
 * starts: a reader commits no offset past it, so a restart reads the set again.
 */
export class PartAssembler {
  private readonly limits: PartLimits;
  private readonly refuse: (r: PartRefusal) => void;
  private readonly partitions = new Map<string, PartitionState>();
  private heldBytes = 0;
  private begun = 0;

  constructor(limits: PartLimits, refuse: (r: PartRefusal) => void) {
    this.limits = limits;
    this.refuse = refuse;
  }

  /** Bytes of parts held now. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /**
   * The message at `offset` of `partition` (any key naming a topic-partition): its whole
   * value and the offset where it began, or undefined (a part held, or refused).
   */
  take(partition: string, offset: string, headers: PartHeaders | undefined, value: Buffer | null): { value: Buffer | null; firstOffset: string } | undefined {
    const st = this.state(partition);
    st.seen++;
    this.expire(partition, st);
    let part: PartOf | undefined;
    try {
      part = partOf(headers, this.limits.partsPerSetMax);
    } catch (err) {
      this.refuse({ partition, offsets: [offset], err: err as TapedeckError });
      return undefined;
    }
    if (part === undefined) return { value, firstOffset: offset };
    const open = st.sets.get(part.set);
    if (part.i === 1) {
      if (open) {
        // The same set read again from its start (a rebalance, a restart): begin anew; a
        // set begun again elsewhere: the first one never completed.
        if (open.offsets[0] !== offset) this.drop(partition, st, open, `parts 1..${open.values.length} of ${open.part.n} never completed (the set began again at offset ${offset})`);
        else this.forget(st, open);
      }
      return this.append(partition, st, { id: part.set, part, offsets: [], values: [], bytes: 0, startAt: st.seen, order: this.begun++ }, offset, value);
    }
    if (!open) {
      this.refuse({ partition, offsets: [offset], err: partsError(`part ${part.i}/${part.n} without the parts before it`) });
      return undefined;
    }
    if (part.i !== open.values.length + 1) {
      this.drop(partition, st, open, `part ${part.i}/${part.n} came after part ${open.values.length}`, offset);
      return undefined;
    }
    return this.append(partition, st, open, offset, value);
  }

  /** The first offset of the earliest set held in `partition` (undefined: none). */
  heldFrom(partition: string): string | undefined {
    let low: bigint | undefined;
    for (const s of this.partitions.get(partition)?.sets.values() ?? []) {
      const o = BigInt(s.offsets[0] as string);
      if (low === undefined || o < low) low = o;
    }
    return low?.toString();
  }

  /**
   * The message at `offset` is refused by the reader (a stale fence): when it is a part, its
   * set goes with it, refused with `err` (its held parts and this one), else just this one.
   */
  discard(partition: string, offset: string, headers: PartHeaders | undefined, err: TapedeckError): void {
    const st = this.state(partition);
    st.seen++;
    let set: string | undefined;
    try {
      set = partOf(headers, this.limits.partsPerSetMax)?.set;
    } catch {
      set = undefined;
    }
    const open = set === undefined ? undefined : st.sets.get(set);
    if (!open) {
      this.refuse({ partition, offsets: [offset], err });
      return;
    }
    this.forget(st, open);
    this.refuse({ partition, offsets: [...open.offsets, offset], err });
  }

  /** Forgets a partition's sets without refusing them (it was revoked: its messages will be read again). */
  release(partition: string): void {
    const st = this.partitions.get(partition);
    if (!st) return;
    for (const s of st.sets.values()) this.heldBytes -= s.bytes;
    this.partitions.delete(partition);
  }

  private state(partition: string): PartitionState {
    let st = this.partitions.get(partition);
    if (!st) {
      st = { seen: 0, sets: new Map() };
      this.partitions.set(partition, st);
    }
    return st;
  }

  private append(partition: string, st: PartitionState, s: OpenSet, offset: string, value: Buffer | null): { value: Buffer; firstOffset: string } | undefined {
    const v = value ?? Buffer.alloc(0);
    st.sets.set(s.id, s);
    s.offsets.push(offset);
    s.values.push(v);
    s.bytes += v.length;
    this.heldBytes += v.length;
    if (s.values.length < s.part.n) {
      this.evict();
      return undefined;
    }
    const whole = Buffer.concat(s.values);
    if (sha256Hex(whole) !== s.part.sum) {
      this.drop(partition, st, s, `the ${s.part.n} parts do not make the value their tpd-sum names`);
      return undefined;
    }
    this.forget(st, s);
    return { value: whole, firstOffset: s.offsets[0] as string };
  }

  private forget(st: PartitionState, s: OpenSet): void {
    st.sets.delete(s.id);
    this.heldBytes -= s.bytes;
  }

  private drop(partition: string, st: PartitionState, s: OpenSet, why: string, alsoOffset?: string): void {
    this.forget(st, s);
    this.refuse({ partition, offsets: alsoOffset === undefined ? s.offsets : [...s.offsets, alsoOffset], err: partsError(why) });
  }

  /** Sets whose last part did not come within partSetSpanMessagesMax messages of their partition. */
  private expire(partition: string, st: PartitionState): void {
    for (const s of st.sets.values()) {
      if (st.seen - s.startAt > this.limits.partSetSpanMessagesMax) {
        this.drop(partition, st, s, `parts 1..${s.values.length} of ${s.part.n}: the rest did not come within ${this.limits.partSetSpanMessagesMax} messages (partSetSpanMessagesMax)`);
      }
    }
  }

  /** Past partsHeldBytesMax, the sets begun earliest (in any partition) are refused. */
  private evict(): void {
    while (this.heldBytes > this.limits.partsHeldBytesMax) {
      let oldest: { p: string; st: PartitionState; s: OpenSet } | undefined;
      for (const [p, st] of this.partitions) {
        for (const s of st.sets.values()) if (!oldest || s.order < oldest.s.order) oldest = { p, st, s };
      }
      if (!oldest) return;
      this.drop(oldest.p, oldest.st, oldest.s, `parts 1..${oldest.s.values.length} of ${oldest.s.part.n}: more than ${this.limits.partsHeldBytesMax} bytes of parts held (partsHeldBytesMax)`);
    }
  }
}
