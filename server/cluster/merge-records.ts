/**
 * The k-way merge of the shards' ordered streams (docs/cluster.md, "The tie rule"):
 * records come out by timestamp; equal timestamps by shard (the sources' order, which is
 * shard-id order), then in each shard's own order. Each source is read one record at a time,
 * so a slow reader holds every shard back (their sockets push back), and memory is one
 * record per shard. Also the line readers that cut a shard's streamed body into records.
 */
import { TapedeckError } from '../../protocol/errors.js';
import { compareTie } from './merge-tie.js';

export interface Keyed<T> {
  ts: number;
  item: T;
}

export interface Merged<T> extends Keyed<T> {
  /** Index of the source it came from. */
  source: number;
}

/** (ts, source) order: the tie rule, the sources being in shard-id order. */
function before(a: Merged<unknown>, b: Merged<unknown>): boolean {
  return compareTie(a.ts, a.source, b.ts, b.source) < 0;
}

/** A binary min-heap of the sources' heads. */
class Heads<T> {
  private readonly h: Array<Merged<T>> = [];

  get size(): number {
    return this.h.length;
  }

  push(x: Merged<T>): void {
    const h = this.h;
    h.push(x);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Merged<T>, h[p] as Merged<T>)) break;
      [h[i], h[p]] = [h[p] as Merged<T>, h[i] as Merged<T>];
      i = p;
    }
  }

  pop(): Merged<T> | undefined {
    const h = this.h;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    h[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as Merged<T>, h[m] as Merged<T>)) m = l;
      if (r < h.length && before(h[r] as Merged<T>, h[m] as Merged<T>)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Merged<T>, h[i] as Merged<T>];
      i = m;
    }
    return top;
  }
}

/**
 * Merges ordered sources (each non-decreasing in ts) into one ordered stream by the tie
 * rule. A source out of order is a shard fault: TPD_INTERNAL, not a silently wrong order.
 */
export async function* mergeByTs<T>(sources: ReadonlyArray<AsyncIterator<Keyed<T>>>): AsyncGenerator<Merged<T>> {
  const heads = new Heads<T>();
  const pull = async (source: number, lastTs: number): Promise<void> => {
    const r = await (sources[source] as AsyncIterator<Keyed<T>>).next();
    if (r.done) return;
    if (r.value.ts < lastTs) throw new TapedeckError('TPD_INTERNAL', `shard stream ${source} went back in time (${r.value.ts} after ${lastTs})`);
    heads.push({ ...r.value, source });
  };
  try {
    await Promise.all(sources.map((_, i) => pull(i, -Infinity)));
    while (heads.size > 0) {
      const top = heads.pop() as Merged<T>;
      yield top;
      await pull(top.source, top.ts);
    }
  } finally {
    // Ended, failed or abandoned by its reader: every source is closed now (a shard's
    // socket freed), not when its idle timeout fires.
    await Promise.allSettled(sources.map((s) => s.return?.()));
  }
}

/**
 * Lines of a text body (without their `\n`); a line past `maxChars` is a shard fault. Each
 * chunk is searched once, and a line that spans chunks is joined once from its pieces: a
 * long line in small chunks costs its length, not its length times its chunks.
 */
export async function* lines(body: AsyncIterable<Buffer | string>, maxChars: number): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const pieces: string[] = [];
  let pending = 0;
  const line = (last: string): string => {
    if (pieces.length === 0) return last;
    pieces.push(last);
    const whole = pieces.join('');
    pieces.length = 0;
    pending = 0;
    return whole;
  };
  for await (const chunk of body) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      yield line(text.slice(start, nl));
      start = nl + 1;
    }
    if (start < text.length) {
      pieces.push(text.slice(start));
      pending += text.length - start;
    }
    if (pending > maxChars) throw new TapedeckError('TPD_INTERNAL', `a shard sent a line over ${maxChars} characters`);
  }
  const rest = line(decoder.decode());
  if (rest.length > 0) yield rest;
}

/**
 * CSV rows of a text body (a row may hold line breaks inside quotes), each without its
 * final `\n`.
 */
export async function* csvRows(body: AsyncIterable<Buffer | string>, maxChars: number): AsyncGenerator<string> {
  let row: string | undefined;
  let quotes = 0;
  for await (const line of lines(body, maxChars)) {
    row = row === undefined ? line : `${row}\n${line}`;
    for (let i = line.indexOf('"'); i >= 0; i = line.indexOf('"', i + 1)) quotes++;
    if (quotes % 2 === 1) {
      if (row.length > maxChars) throw new TapedeckError('TPD_INTERNAL', `a shard sent a CSV row over ${maxChars} characters`);
      continue;
    }
    yield row;
    row = undefined;
    quotes = 0;
  }
  if (row !== undefined) yield row;
}

/** The leading integer of a record (`{"ts":123,...` or `123,...`), or NaN (also past 2^53: not a time exactly). */
export function leadingTs(record: string, prefix: string): number {
  let n = 0;
  let i = prefix.length;
  if (!record.startsWith(prefix)) return NaN;
  for (; i < record.length && i - prefix.length <= 16; i++) {
    const c = record.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
  }
  const more = record.charCodeAt(i) - 48;
  return i === prefix.length || (more >= 0 && more <= 9) || !Number.isSafeInteger(n) ? NaN : n;
}
