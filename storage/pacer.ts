/**
 * Paces background work to a rate (updates a second): after each step it yields to the event
 * loop, and sleeps while the work ran ahead of its rate within the current second. Sidecar
 * builds (series-index/builds.ts) and the server's compaction (live-compact.ts) go through it.
 */
export class Pacer {
  private window = { updates: 0, sinceMs: 0 };

  constructor(private readonly perSecond: () => number) {}

  /** Waits after a step of `updates` updates. */
  async step(updates: number): Promise<void> {
    const nowMs = performance.now();
    if (nowMs - this.window.sinceMs > 1000) this.window = { updates: 0, sinceMs: nowMs };
    this.window.updates += updates;
    const dueMs = this.window.sinceMs + (this.window.updates / this.perSecond()) * 1000;
    await new Promise<void>((resolve) => {
      if (dueMs > nowMs) setTimeout(resolve, dueMs - nowMs);
      else setImmediate(resolve);
    });
  }
}
