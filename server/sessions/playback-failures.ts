/**
 * How a playback session meets a failed read (./playback-loop.ts runs the turns): a read
 * into archive files that cannot be read (gone, not fetchable) crosses them (./playhead.ts
 * crossGone, storage/cursor-gap.ts) and the client is told of the gap; a hole with nothing
 * readable after it yet is the end of what can be read; a read stopped because its stream
 * left (./read-stops.ts) is put back, as if never made; any other failure reaches the
 * client as an error frame and pauses the session, which stays alive to be moved elsewhere.
 */
import { formatTs } from '../../protocol/time.js';
import type { CrossedGap } from '../../storage/cursor-gap.js';
import { PlaybackLoop } from './playback-loop.js';

export abstract class PlaybackFailures extends PlaybackLoop {
  /** The hole with nothing readable after it that the client was told of (holeAtEnd), until a seek or a crossing. */
  private holeSaid: string | undefined;

  /**
   * A turn failed. A read into a file that cannot be read (gone, not fetchable) is crossed
   * (./playhead.ts crossGone): the client is told of the gap (a `gap` frame), gets the state
   * after it, and playing goes on, paced as recorded (or ends, past a bounded end). Any other failure: fatal().
   */
  protected async readFailed(err: unknown): Promise<void> {
    // Stopped (its stream left, the session ended: ./read-stops.ts), counted; not a failure.
    const stopped = this.stops.stopped(err);
    if (this.closed) return;
    if (stopped) return this.afterStop();
    const gap = await this.stops.under(this.stops.loopSignal, () => this.head.crossGone(err)).catch((again: unknown) => void (err = again));
    if (this.stops.stopped(err) && !this.closed) return this.afterStop();
    if (this.closed) return;
    if (gap === undefined) return this.fatal(err);
    const lost = `${gap.why}: the batches after ${gap.fromUs === null ? 'the beginning' : formatTs(gap.fromUs)} up to ${formatTs(gap.toUs)} cannot be read`;
    if (gap.place === null) return this.holeAtEnd(gap, lost);
    this.holeSaid = undefined;
    this.log.warn({ files: gap.files, fromUs: gap.fromUs, toUs: gap.toUs }, 'playback crossed archive files that cannot be read');
    this.sendFrame({ type: 'gap', fromUs: gap.fromUs, toUs: gap.toUs, files: gap.files, message: `${lost}; playback goes on from the state at ${formatTs(gap.toUs)}` });
    // A gap past a bounded end ends there: no state after the end.
    if (this.end.kind === 'ts' && gap.toUs > this.end.us && !this.burst) return this.endReached().then(() => this.run(), (again: unknown) => this.fatal(again));
    this.needState = true;
    return this.run();
  }

  /**
   * A hole with nothing readable after it yet (storage/cursor-gap.ts: no file after it, or
   * only `current` with nothing committed): the client is told once (a `gap` frame; a later
   * crossing of the same hole, once data comes after it, sends its whole gap and the state),
   * then it is the end of the archive: a live end tails (each commit tries again), a bounded
   * one ends (or wraps), a burst ends there.
   */
  private async holeAtEnd(gap: CrossedGap, lost: string): Promise<void> {
    const key = `${gap.fromUs}:${gap.files.join('/')}`;
    if (this.holeSaid !== key) {
      this.holeSaid = key;
      this.log.warn({ files: gap.files, fromUs: gap.fromUs, toUs: gap.toUs }, 'playback reached archive files that cannot be read, with none readable after them');
      const then = this.endIsLive() ? 'playback waits for data after it' : 'playback ends here';
      this.sendFrame({ type: 'gap', fromUs: gap.fromUs, toUs: gap.toUs, files: gap.files, message: `${lost}; no data after them can be read yet: ${then}` });
    }
    const ended = this.burst ? Promise.resolve(this.finishBurst(this.endIsLive() ? 'live' : 'end')) : this.noMoreData();
    return ended.then(() => this.run(), (again: unknown) => this.fatal(again));
  }

  /**
   * A read stopped half-way: its stream left (./read-stops.ts). Nothing was sent for it and
   * nothing moved: the cursor goes back after the last batch sent, and the loop goes on (with
   * no client, it waits for one; a new stream gets the state there).
   */
  private async afterStop(): Promise<void> {
    try {
      await this.stops.settle(() => this.head.afterStop());
    } catch (err) {
      return this.readFailed(err);
    }
    return this.run();
  }

  protected fatal(err: unknown): Promise<void> {
    // Closed meanwhile (a read that waited for a fetch is not awaited by close): nobody to
    // tell (close answered its burst's waiters), and the archive may be closed under it.
    if (this.closed) return Promise.resolve();
    // A read error (corrupt block, file unavailable): tell the client, pause, stay alive so
    // it can seek elsewhere.
    this.sendError(err);
    this.state = 'pause';
    this.pacer.reset();
    // A burst cut by the failure ends here; its waiters get the controls after it.
    const b = this.burst;
    this.burst = undefined;
    this.sendFrame({ type: 'controls', controls: this.controls });
    b?.settle(this.controls);
    return this.run();
  }

  protected override async seekTo(pos: Parameters<PlaybackLoop['seekTo']>[0]): Promise<void> {
    await super.seekTo(pos);
    this.holeSaid = undefined;
  }
}
