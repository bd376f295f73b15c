/**
 * The `prometheus-scrape` source against hostile targets: a real recording server scrapes
 * real sockets that answer badly (a body that never ends, one byte a second, a
 * Content-Length that lies either way, a connection closed mid-body, a redirect loop, a
 * gzip body nobody asked for, a line past scrapeLineBytesMax, more samples than
 * scrapeSamplesMax, timestamps far in the past and the future). For each: the scrape ends
 * (the target sees its connection closed), up = 0 is recorded with the reason logged,
 * nothing of the failed scrape is recorded, and a good target of another source, push
 * ingest and the HTTP API keep answering. The cases test/prom-scrape.test.ts and
 * test/audit9-prom-text.test.ts cover (a 500, no answer at all, bad text, invalid UTF-8, a
 * series twice) are not repeated here.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seriesToPath } from '../protocol/prom-path.js';
import { resolveConfig } from '../server/config.js';
import { SERVER_LIMITS } from '../server/limits.js';
import { startServer, type RunningServer } from '../server/main.js';
import type { PromScrapeSource } from '../server/sources/prom-scrape.js';
import { until } from './helpers/until.js';

/** Each target's timeout (ms): the hostile answers must end by it. */
const TIMEOUT_MS = 1500;

interface Conn { path: string; head: string; bytesSent: number; closed: boolean }

/** What each hostile path does with a connection, once its request head is read. */
type Behaviour = (sock: net.Socket, c: Conn) => void;

/** One request per connection here: each answer says so. */
const http200 = (extra = ''): string => `HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: text/plain; version=0.0.4\r\n${extra}`;

function send(sock: net.Socket, c: Conn, data: string | Buffer): void {
  if (sock.destroyed) return;
  c.bytesSent += Buffer.byteLength(data);
  sock.write(data);
}

/** Sends and ends the connection. */
function finish(sock: net.Socket, c: Conn, data: string | Buffer): void {
  send(sock, c, data);
  sock.end();
}

const CHUNK = Buffer.from(`${'forever_metric{i="x"} 1\n'.repeat(2730)}`);

const BEHAVIOURS: Record<string, Behaviour> = {
  /** A chunked body that never ends, as fast as the socket takes it. */
  forever: (sock, c) => {
    send(sock, c, http200('transfer-encoding: chunked\r\n\r\n'));
    const pump = (): void => {
      while (!sock.destroyed) {
        const chunk = Buffer.concat([Buffer.from(`${CHUNK.length.toString(16)}\r\n`), CHUNK, Buffer.from('\r\n')]);
        c.bytesSent += chunk.length;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
    };
    pump();
  },
  /** One byte a second, never done (each byte well within the timeout). */
  slowloris: (sock, c) => {
    send(sock, c, http200('transfer-encoding: chunked\r\n\r\n'));
    const t = setInterval(() => send(sock, c, '1\r\na\r\n'), 1000);
    sock.on('close', () => clearInterval(t));
  },
  /** Says 1000 bytes, sends 8, closes. */
  'length-long-close': (sock, c) => {
    send(sock, c, `${http200('content-length: 1000\r\n\r\n')}a_gone 1`);
    setTimeout(() => sock.end(), 50);
  },
  /** Says 1000 bytes, sends 8, keeps the connection open. */
  'length-long-open': (sock, c) => send(sock, c, `${http200('content-length: 1000\r\n\r\n')}a_gone 1`),
  /** Says 6 bytes where the text is longer: the answer ends mid-line, the rest is junk on the connection. */
  'length-short': (sock, c) => finish(sock, c, `${http200('content-length: 6\r\n\r\n')}short_metric 1\nother_metric 2\n`),
  /** Half a body, then the connection is gone. */
  'close-mid-body': (sock, c) => {
    send(sock, c, `${http200('content-length: 100\r\n\r\n')}mid_a 1\nmid_b`);
    setTimeout(() => sock.destroy(), 50);
  },
  /** Redirects to itself. */
  'redirect-loop': (sock, c) => finish(sock, c, `HTTP/1.1 302 Found\r\nconnection: close\r\nlocation: ${c.path}\r\ncontent-length: 0\r\n\r\n`),
  /** Gzip whether asked or not. */
  gzip: (sock, c) => {
    const body = gzipSync('gz_metric 1\n');
    send(sock, c, http200(`content-encoding: gzip\r\ncontent-length: ${body.length}\r\n\r\n`));
    finish(sock, c, body);
  },
  /** One line of 1 MiB. */
  'huge-line': (sock, c) => {
    const body = `huge_marker 1\nhuge{v="${'x'.repeat(1024 * 1024)}"} 1\n`;
    finish(sock, c, `${http200(`content-length: ${Buffer.byteLength(body)}\r\n\r\n`)}${body}`);
  },
  /** One sample more than scrapeSamplesMax, the first of them a marker. */
  'samples-max': (sock, c) => {
    const body = `many_marker 1\n${'many 1\n'.repeat(SERVER_LIMITS.scrapeSamplesMax)}`;
    finish(sock, c, `${http200(`content-length: ${body.length}\r\n\r\n`)}${body}`);
  },
  /** Timestamps near the epoch and far in the future (within int64 ms), beside a plain sample. */
  'far-times': (sock, c) => {
    const body = `epoch_metric 1 1000\nfuture_metric 2 9000000000000000\nplain_metric 3\n`;
    finish(sock, c, `${http200(`content-length: ${body.length}\r\n\r\n`)}${body}`);
  },
};

/** A raw HTTP/1.1 endpoint: reads one request head per connection and hands it to its behaviour. */
class HostileTargets {
  readonly conns: Conn[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((sock) => {
    this.sockets.add(sock);
    let head = '';
    sock.on('error', () => undefined);
    sock.on('close', () => this.sockets.delete(sock));
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const path = head.slice(head.indexOf(' ') + 1, head.indexOf(' ', head.indexOf(' ') + 1));
      const c: Conn = { path, head: head.slice(0, end), bytesSent: 0, closed: false };
      this.conns.push(c);
      sock.on('close', () => { c.closed = true; });
      // Whatever the client sends next is read and dropped (one request per connection here).
      sock.on('data', () => undefined);
      const b = BEHAVIOURS[path.slice(1)];
      if (!b) return void sock.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      b(sock, c);
    };
    sock.on('data', onData);
  });
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  of(name: string): Conn[] {
    return this.conns.filter((c) => c.path === `/${name}`);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A good exposition endpoint: its counter goes up every scrape. */
function goodTarget(): Promise<{ url: string; close(): Promise<void> }> {
  let n = 0;
  const srv = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.on('data', () => {
      const body = `good_total ${++n}\n`;
      sock.write(`${http200(`content-length: ${body.length}\r\n\r\n`)}${body}`);
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/metrics`,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  })));
}

const targets = new HostileTargets();
let good: Awaited<ReturnType<typeof goodTarget>>;
let server: RunningServer;
/** The archive's directory: for all the tests of this file (helpers/tmp.ts' is removed after each). */
let dir = '';
const logs: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  await targets.start();
  good = await goodTarget();
  dir = await mkdtemp(join(tmpdir(), 'tapedeck-hostile-scrape-'));
  const scrape = { interval: '500ms', timeout: `${TIMEOUT_MS}ms`, backoff_initial: '500ms', backoff_max: '1s' };
  const config = resolveConfig({
    archive_directory: dir,
    record: { spec: ['/**'], flush_interval: '100ms' },
    publish: { bind: '127.0.0.1:0' },
    sources: [
      { name: 'push', type: 'push' },
      { name: 'good', type: 'prometheus-scrape', targets: [good.url], ...scrape },
      ...Object.keys(BEHAVIOURS).map((name) => ({ name, type: 'prometheus-scrape', targets: [`http://127.0.0.1:${targets.port}/${name}`], ...scrape })),
    ],
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  server = await startServer(config, { logger: pino({ level: 'debug' }, sink) });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await targets.close();
  await good?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function latest(path: string): unknown {
  return server.recorder?.latest.get(path);
}

const instance = (): string => `127.0.0.1:${targets.port}`;
const upOf = (job: string): string => seriesToPath({ name: 'up', labels: { job, instance: instance() } });
const seriesOf = (name: string, job: string, labels: Record<string, string> = {}): string => seriesToPath({ name, labels: { ...labels, job, instance: instance() } });

/** The reasons logged for a source's failed scrapes. */
function reasons(source: string): string[] {
  return logs.filter((l) => l.source === source && l.msg === 'poll failed').map((l) => String(l.err));
}

function scraper(name: string): PromScrapeSource {
  return server.sources.find((s) => s.name === name) as PromScrapeSource;
}

/** Until the source failed at least twice: up = 0, a reason logged, and the HTTP API, push ingest and a good target still going. */
async function failsTwice(name: string, why: RegExp): Promise<void> {
  await until(() => scraper(name).health().failures >= 2, 30_000, `${name}: two failed scrapes`);
  expect(latest(upOf(name)), name).toBe(0);
  // The reason is logged. On this loaded machine (every target is served by this process,
  // the never-ending body and the million samples among them) a scrape may also time out.
  await until(() => reasons(name).some((r) => why.test(r)), 30_000, `${name}: the reason logged`);
  const logged = reasons(name);
  expect(logged.every((r) => why.test(r) || /\(timeout\)$/.test(r)), `${name}: ${JSON.stringify(logged)}`).toBe(true);
  // Everyone else still answers.
  const goodPath = seriesToPath({ name: 'good_total', labels: { job: 'good', instance: new URL(good.url).host } });
  const before = latest(goodPath) as number;
  const push = await fetch(`${server.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `{"updates":{"/alive/${name}":1}}\n` });
  expect(push.status, `${name}: push ingest`).toBe(200);
  const q = await fetch(`${server.url}/api/v1/query?query=up`);
  expect(q.status, `${name}: query API`).toBe(200);
  await until(() => (latest(goodPath) as number) > before, 30_000, `${name}: the good target still scraped`);
}

describe('prometheus-scrape against hostile targets', () => {
  it('a body that never ends: cut at sourceResponseBytesMax or the timeout, connection closed', async () => {
    await failsTwice('forever', /sourceResponseBytesMax|timeout/);
    const conns = targets.of('forever');
    await until(() => conns.filter((c) => c.closed).length >= 2, 30_000, 'forever: connections closed by the scraper');
    // Read no further than the limit (plus what the sockets' buffers hold).
    for (const c of conns.filter((x) => x.closed)) expect(c.bytesSent).toBeLessThan(SERVER_LIMITS.sourceResponseBytesMax + 32 * 1024 * 1024);
    expect(latest(seriesOf('forever_metric', 'forever', { i: 'x' }))).toBeUndefined();
  });

  it('one byte a second: ended by the scrape timeout, not by the time between bytes', async () => {
    await failsTwice('slowloris', /timeout/);
    await until(() => targets.of('slowloris').filter((c) => c.closed).length >= 2, 30_000, 'slowloris: connections closed');
  });

  it('a Content-Length longer than the body: closed early or left open, the scrape fails', async () => {
    await failsTwice('length-long-close', /does not match content-length|closed|terminated|socket|ECONNRESET/i);
    await failsTwice('length-long-open', /timeout/);
    await until(() => targets.of('length-long-open').filter((c) => c.closed).length >= 2, 30_000, 'length-long-open: connections closed');
    expect(latest(seriesOf('a_gone', 'length-long-close'))).toBeUndefined();
  });

  it('a Content-Length shorter than the body: the answer ends mid-line and is refused whole', async () => {
    await failsTwice('length-short', /exposition line 1/);
    expect(latest(seriesOf('short_metric', 'length-short'))).toBeUndefined();
    expect(latest(seriesOf('other_metric', 'length-short'))).toBeUndefined();
  });

  it('a connection closed mid-body: the scrape fails and nothing of it is recorded', async () => {
    await failsTwice('close-mid-body', /does not match content-length|closed|terminated|socket|ECONNRESET/i);
    expect(latest(seriesOf('mid_a', 'close-mid-body'))).toBeUndefined();
  });

  it('a redirect loop: redirects are not followed, the scrape fails naming the status', async () => {
    await failsTwice('redirect-loop', /HTTP 302/);
    // One request per scrape at most: no loop.
    expect(targets.of('redirect-loop').length).toBeLessThanOrEqual(scraper('redirect-loop').health().polls + 1);
  });

  it('gzip nobody asked for: Tapedeck asks for no encoding and refuses an encoded body, naming it', async () => {
    await failsTwice('gzip', /content-encoding gzip/);
    for (const c of targets.of('gzip')) expect(c.head.toLowerCase()).not.toMatch(/accept-encoding/);
  });

  it('a line past scrapeLineBytesMax: refused whole, its first sample not recorded', async () => {
    await failsTwice('huge-line', /scrapeLineBytesMax/);
    expect(latest(seriesOf('huge_marker', 'huge-line'))).toBeUndefined();
    // Prometheus' scrape_samples_scraped of a refused text: the samples before the refusal.
    expect(latest(seriesOf('scrape_samples_scraped', 'huge-line'))).toBe(1);
  });

  it('more samples than scrapeSamplesMax: refused whole, its first sample not recorded', async () => {
    await failsTwice('samples-max', /scrapeSamplesMax/);
    expect(latest(seriesOf('many_marker', 'samples-max'))).toBeUndefined();
    expect(latest(seriesOf('many', 'samples-max'))).toBeUndefined();
  });

  it('timestamps near the epoch and far in the future: left out on the first scrape too, the rest recorded', async () => {
    const plain = seriesOf('plain_metric', 'far-times');
    await until(() => latest(plain) === 3, 30_000, 'far-times: plain_metric recorded');
    expect(latest(upOf('far-times'))).toBe(1);
    expect(latest(seriesOf('epoch_metric', 'far-times'))).toBeUndefined();
    expect(latest(seriesOf('future_metric', 'far-times'))).toBeUndefined();
    await server.archive.writer?.flush();
    const c = server.archive.cursor();
    await c.seek('beginning');
    const first = await c.next();
    // The archive does not start in 1970.
    expect(first?.ts ?? 0).toBeGreaterThan(Date.parse('2020-01-01') * 1000);
  });

  it('the server is still up and every hostile source is still polling', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    for (const name of Object.keys(BEHAVIOURS)) {
      const polls = scraper(name).health().polls;
      await until(() => scraper(name).health().polls > polls, 30_000, `${name}: polling on`);
    }
  });
});
