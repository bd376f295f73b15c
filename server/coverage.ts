/**
 * Writes the coverage journal for one recording run: its start (with the last batch the
 * archive held, so a crash before shows as a gap), its first batch, its clean stop, and
 * each source's outages (the first failed poll after a success, then the next success).
 * Reads answer GET /api/v1/coverage and the web player's timeline; every event appended is
 * announced as 'change' (with the event) so tailing playback sessions can send it on.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { coverageBetween, coverageOf, type Coverage, type CoverageEvent } from '../protocol/coverage.js';
import type { Archive } from '../storage/index.js';
import { STORAGE_LIMITS, wallClockUs } from '../storage/index.js';
import { JournalWriter, readJournal } from '../storage/coverage-journal.js';
import { horizonOf } from './horizon.js';
import { SERVER_LIMITS } from './limits.js';
import type { Recorder } from './recorder.js';
import type { PollEvent, Source } from './sources/source.js';

export class CoverageLog extends EventEmitter<{ change: [CoverageEvent] }> {
  readonly run = randomUUID();
  private readonly events: CoverageEvent[] = [];
  private readonly down = new Set<string>();
  private readonly detach: Array<() => void> = [];
  private stopped = false;

  private constructor(
    private readonly archive: Archive,
    private readonly writer: JournalWriter | undefined,
    private readonly log: Logger,
  ) {
    super();
  }

  /**
   * Reads the journal; for a recording archive, starts a run and follows the recorder's
   * first batch and the sources' polls. Damaged journal lines are reported as archive
   * problems and skipped.
   */
  static async open(archive: Archive, log: Logger, recording?: { recorder: Recorder; sources: readonly Source[] }): Promise<CoverageLog> {
    const j = await readJournal(archive.dir);
    for (const p of j.problems) archive.problem({ file: 'coverage.log', code: 'TPD_CORRUPT_BLOCK', message: `coverage journal line ${p.line}: ${p.message} (skipped)` });
    const c = new CoverageLog(archive, recording && !archive.readonly ? new JournalWriter(archive.dir, j.torn) : undefined, log);
    c.events.push(...j.events);
    if (c.writer && recording) {
      await c.append({ kind: 'run-start', run: c.run, atUs: wallClockUs(), lastTsUs: horizonOf(archive.lastTs) });
      const onBatch = (b: { ts: number }): void => {
        recording.recorder.off('batch', onBatch);
        void c.append({ kind: 'run-first-batch', run: c.run, atUs: wallClockUs(), tsUs: b.ts });
      };
      recording.recorder.on('batch', onBatch);
      c.detach.push(() => recording.recorder.off('batch', onBatch));
      for (const s of recording.sources) c.follow(s);
    }
    return c;
  }

  /** Every run, gap and outage touching [startUs, endUs]. */
  between(startUs: number, endUs: number): Coverage {
    const all = coverageOf(this.events);
    // This run's last batch is the archive's committed end, as of now.
    const mine = all.runs.find((r) => r.run === this.run && r.ended === 'running');
    if (mine && this.archive.lastTs > 0) mine.lastTsUs = this.archive.lastTs;
    return coverageBetween(all, startUs, endUs);
  }

  /** Ends the run: call after the archive's last flush (its lastTs is then the run's last batch). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const d of this.detach.splice(0)) d();
    if (!this.writer) return;
    await this.append({ kind: 'run-stop', run: this.run, atUs: wallClockUs(), lastTsUs: horizonOf(this.archive.lastTs) });
    await this.writer.settled();
  }

  private follow(s: Source): void {
    const onPoll = (p: PollEvent): void => {
      if (this.stopped) return;
      if (!p.ok && !this.down.has(s.name)) {
        this.down.add(s.name);
        void this.append({ kind: 'source-down', run: this.run, atUs: wallClockUs(), source: s.name, reason: p.error.message.slice(0, SERVER_LIMITS.outageReasonCharsMax) });
      } else if (p.ok && this.down.delete(s.name)) {
        void this.append({ kind: 'source-up', run: this.run, atUs: wallClockUs(), source: s.name });
      }
    };
    s.on('poll', onPoll);
    this.detach.push(() => s.off('poll', onPoll));
  }

  private async append(e: CoverageEvent): Promise<void> {
    // A source flapping for months must not grow memory without bound: keep the newest.
    if (this.events.length >= STORAGE_LIMITS.coverageEventsMax) this.events.splice(0, this.events.length >> 1);
    this.events.push(e);
    this.emit('change', e);
    try {
      await this.writer?.append(e);
    } catch (err) {
      // Coverage is kept in memory for this run's answers; the journal misses it (full disk?).
      this.log.warn({ err, kind: e.kind }, 'coverage journal append failed');
    }
  }
}
