/**
 * A number that is not one (a long run of digits, then a letter) cannot hold the event loop
 * wherever text is read as a number: in any parameter the Prometheus API reads as a time or
 * a duration (refused with Prometheus' bad_data at once) and as a sample's value in a scraped
 * exposition (the scrape fails), while /health keeps answering.
 *
 * The server runs in a child process (the sources through tsx): a server whose event loop is
 * held would hold this test's loop too, and its /health probes with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingServer, type ChildServer } from './helpers/child-server.js';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** /health must answer at all within this while the hostile request is served (not a timing target). */
const HEALTH_ANSWER_MS = 5_000;
/** Digits of the hostile value: the old regex tried every split of them (quadratic: minutes of CPU). */
const DIGITS = 200_000;

/** Digits of the value an exposition line carries (its line is at most scrapeLineBytesMax, 64 KiB). */
const SCRAPED_DIGITS = 60_000;

let server: ChildServer;
let url: string;
/** An exposition endpoint whose one sample's value is digits and a letter. */
let exposition: http.Server;

beforeAll(async () => {
  exposition = http.createServer((_req, res) => res.end(`hostile_metric ${'1'.repeat(SCRAPED_DIGITS)}x\n`));
  await new Promise<void>((resolve) => exposition.listen(0, '127.0.0.1', resolve));
  server = await startRecordingServer((dir) => ({
    archive_directory: join(dir, 'archive'),
    record: { spec: ['/**'], flush_interval: '0' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'edge', type: 'prometheus-scrape', targets: [`http://127.0.0.1:${(exposition.address() as AddressInfo).port}/metrics`], interval: '50ms' }],
  }));
  url = server.url;
}, 60_000);

afterAll(async () => {
  exposition?.close();
  await server?.close();
});

/** Whether /health answers within HEALTH_ANSWER_MS (an event loop held that long does not). */
function healthAnswers(): Promise<boolean> {
  return server.healthAnswers(HEALTH_ANSWER_MS);
}

const hostile = '1'.repeat(DIGITS) + 'x';

describe('Prometheus API parameters', () => {
  for (const [route, name, others] of [
    ['/api/v1/query_range', 'start', { end: '1', step: '1' }],
    ['/api/v1/query_range', 'step', { start: '0', end: '1' }],
    ['/api/v1/query', 'time', {}],
    ['/api/v1/query', 'timeout', {}],
    ['/api/v1/series', 'end', { 'match[]': 'm' }],
  ] as const) {
    it(`refuses a hostile ${name} of ${route} at once, and /health answers meanwhile`, async () => {
      const form = new URLSearchParams({ query: 'vector(1)', ...others, [name]: hostile });
      const answer = fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      // Sent and being parsed: the probe goes while the server reads the value.
      await new Promise((r) => setTimeout(r, 50));
      expect(await healthAnswers()).toBe(true);
      const res = await answer;
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ status: 'error', errorType: 'bad_data' });
    }, 60_000);
  }
});

describe('scraped exposition', () => {
  it('fails a scrape whose value is digits and a letter at once, scrape after scrape, and /health answers', async () => {
    // The target is scraped every 50 ms from the start: each probe meets scrapes in progress.
    for (let i = 0; i < 5; i++) {
      expect(await healthAnswers()).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
    }
    const sources = (await (await fetch(`${url}/api/v1/sources`, { signal: AbortSignal.timeout(HEALTH_ANSWER_MS) })).json()) as { sources: Array<{ name: string; lastError?: unknown }> };
    expect(JSON.stringify(sources)).toContain('edge');
  }, 60_000);
});
