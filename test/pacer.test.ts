/**
 * The Pacer on a clock the test moves by hand (no timers): batches are due on the anchor's
 * schedule however late each one actually went out, a speed change keeps the playhead, a
 * pause freezes it, unlimited speed is always due, a reset anchors on the next batch.
 */
import { describe, expect, it } from 'vitest';
import { Pacer } from '../server/sessions/pacer.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const T0_US = 1_800_000_000_000_000;

/** A clock at `ms`, moved by the test. */
function clock(startMs = 1000): { now: () => number; to(ms: number): void; by(ms: number): void } {
  let t = startMs;
  return {
    now: () => t,
    to(ms) {
      expect(ms, 'a clock only moves forward').toBeGreaterThanOrEqual(t);
      t = ms;
    },
    by(ms) {
      t += ms;
    },
  };
}

describe('Pacer', () => {
  it('keeps 10 000 batches on schedule however late each one goes out: no drift', () => {
    const seed = scheduleSeed('PACER_SEED', 'pacer lateness');
    const random = rng(seed);
    for (const speed of [1, 3.7, 0.25]) {
      const c = clock();
      const p = new Pacer(speed, c.now);
      const stepUs = 20_000;
      const startMs = c.now();
      let worstMs = 0;
      for (let i = 0; i < 10_000; i++) {
        const ts = T0_US + i * stepUs;
        const due = p.dueMs(ts);
        const expected = startMs + (i * stepUs) / 1000 / speed;
        worstMs = Math.max(worstMs, Math.abs(due - expected));
        // The session sleeps until due, and its timer fires up to 15 ms late (a loaded machine).
        c.to(Math.max(c.now(), due + random() * 15));
        expect(p.waitMs(ts)).toBeLessThanOrEqual(0);
      }
      expect(worstMs, `speed ${speed}, seed ${seed}`).toBeLessThan(1e-6);
    }
  });

  it('anchors on the first batch asked about: it is due at once, the next one a recorded step / speed later', () => {
    const c = clock();
    const p = new Pacer(2, c.now);
    expect(p.positionUs()).toBeUndefined();
    expect(p.waitMs(T0_US + 5_000_000)).toBe(0);
    expect(p.waitMs(T0_US + 5_000_000 + 1_000_000)).toBe(500);
    c.by(250);
    expect(p.positionUs()).toBe(T0_US + 5_000_000 + 500_000);
  });

  it('re-anchors at the playhead on a speed change: the position stays, the rate changes', () => {
    const c = clock();
    const p = new Pacer(1, c.now);
    p.dueMs(T0_US);
    c.by(500);
    const before = p.positionUs();
    expect(before).toBe(T0_US + 500_000);
    p.setSpeed(4);
    expect(p.positionUs()).toBe(before);
    // 500 ms of recorded time left to the batch at T0 + 1 s: 125 ms at 4x.
    expect(p.waitMs(T0_US + 1_000_000)).toBe(125);
    c.by(100);
    expect(p.positionUs()).toBe(T0_US + 500_000 + 400_000);
    p.setSpeed(0.5);
    expect(p.positionUs()).toBe(T0_US + 900_000);
    expect(p.waitMs(T0_US + 1_000_000)).toBe(200);
  });

  it('freezes the playhead while paused and moves on from there on resume', () => {
    const c = clock();
    const p = new Pacer(1, c.now);
    p.dueMs(T0_US);
    c.by(300);
    p.pause();
    c.by(3_600_000); // an hour paused
    expect(p.positionUs()).toBe(T0_US + 300_000);
    p.pause(); // pausing again changes nothing
    p.setSpeed(2); // a speed chosen while paused applies from the resume
    expect(p.positionUs()).toBe(T0_US + 300_000);
    p.resume();
    expect(p.waitMs(T0_US + 400_000)).toBe(50);
    c.by(50);
    expect(p.positionUs()).toBe(T0_US + 400_000);
  });

  it('resume without a pause, a reset, and unlimited speed all make the next batch due at once', () => {
    const c = clock();
    const p = new Pacer(1, c.now);
    p.dueMs(T0_US);
    c.by(10);
    p.resume(); // play while playing: a fresh anchor
    expect(p.waitMs(T0_US + 60_000_000)).toBe(0);
    p.reset();
    expect(p.positionUs()).toBeUndefined();
    expect(p.waitMs(T0_US + 120_000_000)).toBe(0);
    p.setSpeed('unlimited');
    expect(p.positionUs()).toBeUndefined();
    for (let i = 0; i < 5; i++) expect(p.waitMs(T0_US + i * 3_600_000_000)).toBe(0);
    p.setSpeed(1); // from unlimited: no playhead to keep, the next batch anchors
    expect(p.waitMs(T0_US + 7_200_000_000)).toBe(0);
    expect(p.waitMs(T0_US + 7_200_000_000 + 10_000)).toBe(10);
  });
});
