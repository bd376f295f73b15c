/**
 * Where a playback session stands in the archive and how it reads on from there: its cursor,
 * the position shown to clients (the last batch delivered, or the time sought), a batch read
 * but held back (not due yet, past the end), and, while playing at unlimited speed, a second
 * cursor reading whole blocks as columns with the block it holds (./columns.ts).
 *
 * The cursor may stand ahead of the position shown (a batch held back, a block held as
 * columns): before anything else uses it, it goes back to just after the last batch sent, a
 * seek to that time (exact: an archive's batch times only grow), so nothing held back is lost
 * or sent twice. A seek that fails half-way (a gone file, a failed fetch) puts it back there
 * too: the position shown stays the truth.
 *
 * A read forward into a file that cannot be read (gone, not fetchable) crosses it
 * (storage/cursor-gap.ts): both cursors stand at the start of the next readable file and the
 * position shown is the time of the state there. Until a batch is sent from there, going back
 * to the position shown stands there again, without reading the gone file for it.
 */
import type { ParsedControls } from '../../protocol/controls.js';
import type { RawBatch } from '../../storage/cursor.js';
import type { CrossedGap } from '../../storage/cursor-gap.js';
import type { Place } from '../../storage/cursor-seek.js';
import type { Archive, Cursor } from '../../storage/index.js';
import { coverInSlices } from '../routes/queries.js';
import { HeldColumns } from './columns.js';
import type { SessionLog } from './ports.js';
import type { ReadStops } from './read-stops.js';
import { stepFrom } from './steps.js';

export type PosTarget = NonNullable<ParsedControls['pos']>;

export class Playhead {
  /** Position shown to clients: the last batch delivered, or the time sought; null before the first batch. */
  posUs: number | null = null;
  /** A batch read but held back (pacing, the end): the next one to send. */
  pending: RawBatch | null = null;
  /** Unpaced play reads whole blocks as columns (./columns.ts); batches read and not yet sent. */
  readonly held = new HeldColumns();
  readonly cursor: Cursor;
  /**
   * The cursor reads columns: an archive's does; a merged session's (server/cluster) reads
   * batch by batch only, and its positions are not times alone (equal times on two shards).
   */
  readonly readsColumns: boolean;
  /**
   * The cursor that reads columns while playing at unlimited speed: a second cursor, made
   * at the main one's position and dropped (with its block scratch and read-ahead, about
   * 1 MB) when unlimited play stops, so paused, paced and idle sessions hold none of it.
   */
  private columnCursor: Cursor | undefined;
  /** The last gap crossed: the place the position shown stands for while it is the gap's end. */
  private crossed: (CrossedGap & { place: Place }) | undefined;

  constructor(private readonly a: Archive, private readonly filter: readonly string[], private readonly stops: ReadStops, private readonly log: SessionLog) {
    this.cursor = a.cursor(this.cursorOptions());
    this.readsColumns = typeof (this.cursor as Partial<Cursor>).nextColumns === 'function';
  }

  private cursorOptions(): Parameters<Archive['cursor']>[0] {
    return { ...(this.filter.length > 0 ? { filter: this.filter } : {}), onFetchWait: this.stops.wait };
  }

  /** The next batch to send: the one held back, else the cursor's next. */
  async next(): Promise<RawBatch | null> {
    const b = this.pending ?? (await this.cursor.nextRaw());
    this.pending = null;
    return b;
  }

  /** Puts the cursor back after the position shown; what it read ahead is read again. */
  async backToShown(): Promise<void> {
    await this.toShown(this.cursor);
    this.pending = null;
  }

  /** Moves cursor `c` to just after the position shown (the place past a gap it stands for, if so). */
  private async toShown(c: Cursor): Promise<void> {
    const x = this.crossed;
    if (x !== undefined && this.posUs === x.toUs) return c.crossTo(x.place, x.toUs);
    await c.seek(this.posUs !== null ? { ts: this.posUs } : 'beginning');
  }

  /**
   * After a read forward failed with `err`: when the file it read is gone, both cursors stand
   * past it and the position shown is the time of the state there; the gap (its `fromUs` the
   * last batch sent) says what was lost. When no file after it can be read yet, the gap (its
   * `place` null) says so and the cursor stands before it. undefined for any other failure: nothing moved.
   */
  async crossGone(err: unknown): Promise<CrossedGap | undefined> {
    const c = this.columnCursor ?? this.cursor;
    if (typeof (c as Partial<Cursor>).crossGone !== 'function') return undefined; // a merged session's
    const gap = await c.crossGone(err);
    // Nothing readable after the hole yet: the cursor stands before it, the position shown too.
    if (gap === undefined || gap.place === null) return gap;
    if (c !== this.cursor) this.cursor.crossTo(gap.place, gap.toUs);
    this.crossed = { ...gap, place: gap.place, fromUs: this.posUs };
    this.posUs = gap.toUs;
    this.pending = null;
    this.held.clear();
    return this.crossed;
  }

  /**
   * After a read stopped half-way (./read-stops.ts): the column cursor and what was read
   * ahead go, and the cursor goes back after the position shown. Run under the session's
   * own signal (ReadStops.settle).
   */
  async afterStop(): Promise<void> {
    this.columnCursor = undefined;
    this.held.clear();
    this.pending = null;
    await this.toShown(this.cursor);
  }

  /** A column cursor is held (unlimited play), with its block scratch and read-ahead. */
  get holdsColumns(): boolean {
    return this.columnCursor !== undefined;
  }

  /** The column cursor, made at the position shown (where the main cursor stands) when there is none. */
  async columns(): Promise<Cursor> {
    if (this.columnCursor) return this.columnCursor;
    const c = this.a.cursor(this.cursorOptions());
    if (this.filter.length > 0) await coverInSlices(c, this.a.paths.length);
    await this.toShown(c);
    this.columnCursor = c;
    return c;
  }

  /**
   * Leaves unlimited play: drops the column cursor and the block it holds, and moves the
   * main cursor to just after the last batch sent (or where the session was sought).
   */
  async releaseColumns(): Promise<void> {
    this.held.clear();
    if (!this.columnCursor) return;
    this.columnCursor = undefined;
    await this.toShown(this.cursor);
  }

  /**
   * Moves to `pos`; the position shown becomes the cursor's. A step (`+N`/`-N`) that ran into
   * the start or the end tells `clamped` how far it went. A move that fails moves nothing.
   */
  async seek(pos: PosTarget, stepSlice: number, clamped: (message: string) => void): Promise<void> {
    try {
      await this.move(pos, stepSlice, clamped);
    } catch (err) {
      // Nothing moved: the cursor goes back after the last batch shown (a step or a fetch
      // that failed half-way, or a read stopped, left it elsewhere), and what it read ahead
      // is read again. Only the session's end stops that read (a stopped seek's signal would).
      await this.stops.settle(() => this.toShown(this.cursor)).catch((again: unknown) => {
        if (!this.stops.stopped(again)) this.log.warn({ err: again }, 'session cursor not put back');
      });
      this.pending = null;
      throw err;
    }
    this.posUs = this.cursor.pos;
    this.pending = null;
    this.held.clear();
    this.columnCursor = undefined;
    this.crossed = undefined;
  }

  private async move(pos: PosTarget, stepSlice: number, clamped: (message: string) => void): Promise<void> {
    switch (pos.kind) {
      case 'beginning':
        await this.cursor.seek('beginning');
        break;
      case 'end':
        await this.cursor.seek('end');
        break;
      case 'ts':
        await this.cursor.seek({ ts: pos.us });
        break;
      case 'steps': {
        // A step that ran into the start or the end says so rather than stopping silently.
        // A merged cursor (cluster) steps back with one request to each shard, and its reads
        // are network I/O, which yields: slices would only multiply its requests.
        const slice = this.readsColumns ? stepSlice : Infinity;
        const message = await stepFrom(this.cursor, pos.n, this.pending !== null ? () => this.toShown(this.cursor) : undefined, this.posUs, slice);
        if (message !== null) clamped(message);
        break;
      }
    }
  }

  /** The cursor's filter takes path id `id`. */
  readonly matches = (id: number): boolean => this.cursor.matches(id);
}
