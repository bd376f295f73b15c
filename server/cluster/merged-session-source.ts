/**
 * What merged sessions read instead of an archive: the cluster's shards behind the slice of
 * the Archive interface a playback Session and the SessionManager use (cursor(), paths,
 * options, the `commit` event). Sessions, their controls, pacing and frames are the local
 * ones (server/sessions/), unchanged; only their cursor merges shards
 * (./merged-session-cursor.ts).
 *
 * Paths get ids in one table for the node's merged sessions (ids are per connection on the
 * wire, announced by `paths` frames, as for an archive's table).
 *
 * Housekeeping every clusterTailPollMs while sessions are bound: a cursor whose session closed is closed; one whose
 * client left releases its shard streams (they reopen from the position when the client is
 * back); while a session waits for data (tail), the shards' horizons are polled and
 * `commit` is emitted when one of them lets a waiting cursor move on.
 */
import { EventEmitter } from 'node:events';
import type { Archive, Cursor } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import type { ShardDirectory } from './directory.js';
import { MergedCursor, type MergedSourceView } from './merged-session-cursor.js';

/** What the source needs to know of a session (server/sessions/session.ts Session). */
export interface SessionView {
  readonly id: string;
  readonly closed: boolean;
  readonly attached: boolean;
  readonly waitingForData: boolean;
  wake(): void;
}

export class MergedSource extends EventEmitter implements MergedSourceView {
  readonly paths: string[] = [];
  readonly options: { flushIntervalMs: number };
  /** The last cursor made (a Session makes its cursor in its constructor, synchronously). */
  lastCursor: MergedCursor | undefined;
  private readonly ids = new Map<string, number>();
  private readonly bound = new Map<MergedCursor, SessionView>();
  private readonly bySession = new Map<string, MergedCursor>();
  /** Runs only while sessions are bound: a node with no merged session wakes for none of this. */
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(readonly directory: ShardDirectory, flushIntervalMs: number) {
    super();
    this.options = { flushIntervalMs };
  }

  /** True while the housekeeping timer runs (sessions are bound). */
  get housekeeping(): boolean {
    return this.timer !== undefined;
  }

  /** This source as the archive a SessionManager and its Sessions read. */
  asArchive(): Archive {
    return this as unknown as Archive;
  }

  idOf(path: string): number {
    let id = this.ids.get(path);
    if (id === undefined) {
      id = this.paths.length;
      this.paths.push(path);
      this.ids.set(path, id);
    }
    return id;
  }

  commitLagUs(): number {
    return (this.options.flushIntervalMs + 1000) * 1000;
  }

  cursor(opts: { filter?: readonly string[] } = {}): Cursor {
    const c = new MergedCursor(this, opts.filter ?? []);
    this.lastCursor = c;
    return c as unknown as Cursor;
  }

  bind(cursor: MergedCursor, session: SessionView): void {
    this.bound.set(cursor, session);
    this.bySession.set(session.id, cursor);
    cursor.session = session;
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), SERVER_LIMITS.clusterTailPollMs);
      this.timer.unref();
    }
  }

  cursorOf(sessionId: string): MergedCursor | undefined {
    return this.bySession.get(sessionId);
  }

  private async tick(): Promise<void> {
    let waiting = false;
    for (const [c, s] of this.bound) {
      if (s.closed) {
        c.close();
        this.bound.delete(c);
        this.bySession.delete(s.id);
      } else if (!s.attached) {
        c.release();
      } else if (s.waitingForData) {
        waiting = true;
      }
    }
    if (this.bound.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (!waiting || this.polling) return;
    this.polling = true;
    try {
      const shards = await this.directory.shards();
      let moved = false;
      for (const [c, s] of this.bound) if (s.waitingForData && c.horizonsPolled(shards)) moved = true;
      if (moved) this.emit('commit');
    } catch {
      // Membership unreadable: the next tick asks again; sessions keep what they have.
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const c of this.bound.keys()) c.close();
    this.bound.clear();
    this.bySession.clear();
  }
}
