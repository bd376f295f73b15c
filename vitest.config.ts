import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Files whose assertions lean on wall-clock timing (lease TTLs and failover gaps, pacing
 * drift): they run after the rest, one at a time, so no other file competes with them for
 * the two cores. Everything else runs two files at a time: most slow files wait on brokers,
 * child processes and kills rather than compute.
 */
const ALONE = ['test/ha.test.ts', 'test/ha-broker.test.ts', 'test/playback.test.ts'];

export default defineConfig({
  test: {
    // Builds dist/ for the spawned children and serves the shared Kafka broker and Redis.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll retries its callback until this (vitest's default, 1 s, fails browser
    // tests on a machine whose two cores are busy: a passing poll ends at once anyway).
    expect: { poll: { timeout: 10_000 } },
    pool: 'forks',
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: ALONE,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          // One fork runs these files one after another.
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
