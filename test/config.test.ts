import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EMBEDDED_DEFAULT, loadConfig, resolveConfig, stripComments } from '../server/config.js';
import { durationMs } from '../server/duration.js';
import { EXAMPLE_CONFIG } from '../clients/cli/example.js';
import { problems } from './helpers/config-problems.js';
import { tmpDir } from './helpers/tmp.js';
import { tapedeckArgs } from './helpers/built.js';

const run = promisify(execFile);

describe('config', () => {
  it('parses durations as strings or { secs, nanos }', () => {
    expect(durationMs('250ms')).toBe(250);
    expect(durationMs('5s')).toBe(5000);
    expect(durationMs('1d')).toBe(86_400_000);
    expect(durationMs('1h30m')).toBe(5_400_000);
    expect(durationMs('0')).toBe(0);
    expect(durationMs({ secs: 5, nanos: 500_000_000 })).toBe(5500);
    expect(() => durationMs('5 parsecs')).toThrow(/not a duration/);
  });

  it('fills seed 003 defaults and resolves durations to ms', () => {
    const c = resolveConfig({ archive_directory: '/tmp/x', record: { spec: ['/a/**'], flush_interval: { secs: 2, nanos: 0 } } });
    expect(c.record).toEqual({
      spec: ['/a/**'], pollIntervalMs: 5000, imageFrequencyBytes: 64 * 1024 * 1024, flushFrequencyPages: 65534, flushIntervalMs: 2000, rotateIntervalMs: 0, rotateSizeBytes: 0, compact: true,
    });
    expect(c.publish).toEqual({ host: '127.0.0.1', port: 8080, maxSessions: 512, maxSessionsPerClient: 64, sessionGraceMs: 30_000, rateLimit: { max: 2000, timeWindowMs: 1000 }, promqlWarmUp: true });
    const d = resolveConfig({ archive_directory: '/tmp/x', record: { rotate_size: 1 << 20 }, publish: { session_grace: '2m' } });
    expect([d.record?.rotateSizeBytes, d.publish.sessionGraceMs]).toEqual([1 << 20, 120_000]);
    expect(c.tokens).toEqual([]);
    expect(c.sources).toEqual([]);
    expect(Object.isFrozen(c.record)).toBe(true);
  });

  it('refuses a malformed record.spec glob at start, naming its index, the glob and why', () => {
    const m = problems({ archive_directory: 'd', record: { spec: ['/ok/*', '[', '/a**b', '/x/?'] } });
    expect(m).toMatch(/record\.spec\[1\]: glob "\[" does not start with "\/" \(TPD_BAD_GLOB\)/);
    expect(m).toMatch(/record\.spec\[2\]: glob "\/a\*\*b" mixes "\*\*" into the segment/);
    expect(m).toMatch(/record\.spec\[3\]: .*reserved/);
    expect(m).not.toMatch(/spec\[0\]/);
    expect(problems({ archive_directory: 'd', record: { spec: ['/' + 'a'.repeat(2000)] } })).toMatch(/record\.spec\[0\]: .*globBytesMax/);
    expect(problems({ archive_directory: 'd', record: { spec: Array(257).fill('/a') } })).toMatch(/record\.spec: 257 globs, more than globsPerSpecMax/);
    expect(resolveConfig({ archive_directory: 'd', record: { spec: ['/fabric/sw-*/**', '/twin/*'] } }).record?.spec).toEqual(['/fabric/sw-*/**', '/twin/*']);
  });

  it('names the key path of an unknown key or a bad value, for top-level and source keys', () => {
    expect(problems({ archive_directory: 'd', record: { flush_intervall: '1s' } })).toMatch(/record\.flush_intervall: unknown key/);
    expect(problems({ archive_directory: 'd', record: { flush_interval: '5 parsecs' } })).toMatch(/record\.flush_interval: must be a duration: a string such as "5s"/);
    expect(problems({ archive_directory: 'd', record: { image_frequency: -1 } })).toMatch(/record\.image_frequency: must be >= 0/);
    expect(problems({ archive_directory: 'd', publish: { bind: 'localhost' } })).toMatch(/publish\.bind: must match pattern/);
    expect(problems({ archive_directory: 'd', archive_cmds: { put: 'rsync' } })).toMatch(/archive_cmds\.put: must be null or a command as \[ "program", \[ "arg", \.\.\. \] \]/);
    expect(problems({ record: {} })).toMatch(/archive_directory: required key is missing/);
    expect(problems({ archive_directory: 'd', record: { poll_interval: '0' } })).toMatch(/record\.poll_interval: must be more than 0/);
    expect(problems({ archive_directory: 'd', sources: [{ name: 'a', type: 'csv-matrix', url: 'http://x', interval: { secs: 0 } }] })).toMatch(/sources\[0\]\.interval: must be more than 0/);
    const m = problems({
      archive_directory: 'd',
      sources: [
        { name: 'a', type: 'csv-matrix', url: 'http://x/c', urll: 'typo' },
        { name: 'b', type: 'http-json', url: 'http://x/j', mode: 'flat', interval: 5 },
        { name: 'a', type: 'push' },
        { name: 'c', type: 'kafka-ish' },
      ],
    });
    expect(m).toMatch(/sources\[3\]\.type: must be one of "csv-matrix", "http-json", "push"/);
    const m2 = problems({
      archive_directory: 'd',
      sources: [
        { name: 'a', type: 'csv-matrix', url: 'http://x/c', urll: 'typo' },
        { name: 'b', type: 'http-json', url: 'http://x/j', mode: 'flat', interval: 5 },
        { name: 'a', type: 'push' },
      ],
    });
    expect(m2).toMatch(/sources\[0\]\.urll: unknown key/);
    expect(m2).toMatch(/sources\[1\]\.mode: must be one of "whole", "leaves"/);
    expect(m2).toMatch(/sources\[1\]\.interval: must be a duration/);
    expect(m2).toMatch(/sources\[2\]\.name: "a" is used by another source/);    // Meaning the schema cannot say: a Kafka source's start time and topic pattern.
    const m3 = problems({
      archive_directory: 'd',
      sources: [
        { name: 'k1', type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['t'], start: 'yesterday-ish' },
        { name: 'k2', type: 'kafka', brokers: ['127.0.0.1:9092'], topic_pattern: '([a-z' },
        { name: 'k3', type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['t'], start: '2026-11-23T10:00:00Z' },
        // Only what the linear-time engine runs (server/linear-regex.ts): no pattern can hold the recorder.
        { name: 'k4', type: 'kafka', brokers: ['127.0.0.1:9092'], topic_pattern: '^(a+)\\1$' },
        { name: 'k5', type: 'kafka', brokers: ['127.0.0.1:9092'], topic_pattern: '^(?=t)' },
        { name: 'k6', type: 'kafka', brokers: ['127.0.0.1:9092'], topic_pattern: '^(a+)+$' },
      ],
    });
    expect(m3).toMatch(/sources\[0\]\.start: must be earliest, latest, or a time/);
    expect(m3).toMatch(/sources\[1\]\.topic_pattern: not a regular expression/);
    expect(m3).not.toMatch(/sources\[2\]/);
    expect(m3).toMatch(/sources\[3\]\.topic_pattern: the linear-time engine cannot run it/);
    expect(m3).toMatch(/sources\[4\]\.topic_pattern: the linear-time engine cannot run it/);
    expect(m3).not.toMatch(/sources\[5\]/);
    // Under active/standby a Kafka source records one batch per message in a group of its own.
    const ha = (src: Record<string, unknown>): unknown => ({
      archive_directory: 'd',
      kafka_sink: { brokers: ['127.0.0.1:9092'], topic: 'out' },
      ha: { redis: 'redis://127.0.0.1:6379' },
      sources: [{ name: 'k', type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['t'], ...src }],
    });
    expect(problems(ha({}))).toMatch(/sources\[0\] \(k\)\.batch: must be "message" with ha/);
    expect(problems(ha({}))).toMatch(/sources\[0\] \(k\)\.group_id: must be set/);
    expect(() => resolveConfig(ha({ batch: 'message', group_id: 'rec-a' }))).not.toThrow();
  });

  it('accepts the --example output as it stands, comments included', async () => {
    const c = resolveConfig(JSON.parse(stripComments(EXAMPLE_CONFIG)));
    expect(c.sources.map((s) => s.type)).toEqual(['csv-matrix', 'http-json', 'http-json', 'push']);
    expect(c.record?.rotateIntervalMs).toBe(86_400_000);
    expect(c.simulator).toMatchObject({ port: 0, switches: 64, intervalMs: 1000 });
    const dir = await tmpDir();
    const file = join(dir, 'tapedeck.json');
    await writeFile(file, EXAMPLE_CONFIG);
    expect((await loadConfig(file)).sources).toHaveLength(4);
  });

  it('the embedded default records the simulator into ./data with a 1 s flush', () => {
    const c = resolveConfig(EMBEDDED_DEFAULT);
    expect(c.archiveDirectory).toBe('./data');
    expect(c.record?.flushIntervalMs).toBe(1000);
    expect(c.publish).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(c.simulator).not.toBeNull();
  });

  it('tapedeck serve stops at start naming the bad key or the busy port, and --example prints the example', async () => {
    const dir = await tmpDir();
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ archive_directory: join(dir, 'a'), publish: { max_sesions: 3 } }));
    const err = await run(process.execPath, [...tapedeckArgs(), 'serve', '--config', file]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(1);
    expect(err?.stderr).toMatch(/TPD_BAD_CONFIG: .*publish\.max_sesions: unknown key/);
    // A port already taken: a one-line message, exit 1, and the archive lock released.
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const port = (busy.address() as AddressInfo).port;
    await writeFile(file, JSON.stringify({ archive_directory: join(dir, 'a'), publish: { bind: `127.0.0.1:${port}` } }));
    const taken = await run(process.execPath, [...tapedeckArgs(), 'serve', '--config', file]).then(() => null, (e: { code: number; stderr: string }) => e);
    busy.close();
    expect(taken?.code).toBe(1);
    expect(taken?.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
    expect(existsSync(join(dir, 'a', 'LOCK'))).toBe(false);
    const ex = await run(process.execPath, [...tapedeckArgs(), '--example']);
    expect(ex.stdout).toBe(EXAMPLE_CONFIG);
  });
});
