/**
 * The merged playback sessions of a clustered node (docs/cluster.md, "Merged reads"): a
 * SessionManager over a MergedSource, so a merged session is a local Session (same
 * controls, pacing, frames, close codes, limits and collection) whose cursor merges the
 * shards. Info frames about shards (TPD_SHARDS_MISSING) go to the client attached to the
 * session, in its frame format. Coverage frames carry the union of the shards' gaps and
 * outages, each naming its shard (MergedCoverage).
 */
import type { ControlsInput } from '../../protocol/controls.js';
import { encodeJsonFrame, type ValuelessFrame } from '../../protocol/frames.js';
import { encodeMsgpackFrame } from '../../protocol/msgpack-frames.js';
import { MsgpackWriter } from '../../protocol/value-msgpack.js';
import { SessionManager, type Log, type PlaybackOptions } from '../sessions/manager.js';
import type { Session, SessionSink } from '../sessions/session.js';
import type { ShardDirectory } from './directory.js';
import type { MergedCursor } from './merged-session-cursor.js';
import { MergedCoverage } from './merged-session-coverage.js';
import { MergedSource } from './merged-session-source.js';

export class MergedSessions {
  readonly manager: SessionManager;
  private readonly source: MergedSource;
  private readonly coverage: MergedCoverage;

  constructor(directory: ShardDirectory, playback: PlaybackOptions, flushIntervalMs: number, log: Log) {
    this.source = new MergedSource(directory, flushIntervalMs);
    this.coverage = new MergedCoverage(directory, () => this.manager.list().length > 0);
    this.manager = new SessionManager(this.source.asArchive(), playback, log, this.coverage);
  }

  has(id: string): boolean {
    return this.manager.list().some((s) => s.id === id);
  }

  async create(clientKey: string, controls: ControlsInput, filter: readonly string[]): Promise<Session> {
    // The first state frame is followed by a coverage frame: the shards' coverage as of now.
    await this.coverage.refresh();
    this.source.lastCursor = undefined;
    const pending = this.manager.create(clientKey, controls, filter);
    // The session made its cursor synchronously, before create's first await.
    const cursor = this.source.lastCursor as MergedCursor | undefined;
    try {
      const s = await pending;
      if (cursor) this.source.bind(cursor, s);
      return s;
    } catch (err) {
      cursor?.close();
      throw err;
    }
  }

  /** Attaches a client; the cursor's info frames about shards go to it. */
  attach(s: Session, sink: SessionSink): void {
    const cursor = this.source.cursorOf(s.id);
    if (cursor) {
      const mp = new MsgpackWriter();
      cursor.notify = (frame: ValuelessFrame) => {
        if (sink.format === 'json') sink.send(encodeJsonFrame(frame));
        else {
          const bytes = encodeMsgpackFrame(mp, frame);
          sink.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        }
      };
    }
    s.attach(sink);
    cursor?.announceLost();
  }

  /** Detaches a client; its shard streams are released by the source's next housekeeping. */
  detach(s: Session, sink: SessionSink): void {
    s.detach(sink);
    const cursor = this.source.cursorOf(s.id);
    if (cursor && !s.attached) cursor.notify = undefined;
  }

  async delete(id: string): Promise<void> {
    const cursor = this.source.cursorOf(id);
    await this.manager.delete(id);
    cursor?.close();
  }

  async close(): Promise<void> {
    await this.manager.close();
    this.source.close();
    this.coverage.close();
  }
}
