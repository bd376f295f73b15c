import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ for the spawned children and serves the shared Kafka broker and Redis.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // At least two files at a time, even on two cores (vitest's default is cores - 1): most
    // of the slow files wait on brokers, child processes and kills rather than compute.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
