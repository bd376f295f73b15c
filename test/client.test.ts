import { afterEach, describe, expect, it, vi } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, type TestServer } from './helpers/server.js';
import { TapedeckClient, TapedeckClientError, type StreamFrame } from '../clients/client/index.js';
import { randomBatches } from './helpers/workload.js';
import { plain } from './helpers/replay.js';
import { joinSignedValues } from '../clients/cli/main.js';
import { splitKeys } from '../clients/cli/play.js';
import type { Batch } from '../protocol/value.js';
import { tapedeckArgs } from './helpers/built.js';
import { tmpDir } from './helpers/tmp.js';
import { Archive } from '../storage/index.js';
import { buildServer } from '../server/app.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function take(it: AsyncIterator<StreamFrame>, pred: (f: StreamFrame) => boolean): Promise<StreamFrame> {
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error('stream ended');
    if (pred(r.value)) return r.value;
  }
}

describe('TypeScript client', () => {
  for (const [format, layout] of [['json', undefined], ['msgpack', undefined], ['json', 'pairs'], ['msgpack', 'pairs']] as const) {
    it(`iterates frames (${format}, layout ${layout ?? 'default'}) and reproduces the archive`, async () => {
      const batches = randomBatches(31, 400);
      server = await startServer(batches);
      const td = new TapedeckClient(server.url);
      const s = await td.createSession({ speed: 'unlimited' });
      const stream = td.stream(s.id, layout ? { format, layout } : { format });
      const got: Batch[] = [];
      const it = stream[Symbol.asyncIterator]();
      expect((await take(it, () => true)).type).toBe('state');
      while (got.length < batches.length) {
        const f = await take(it, (x) => x.type === 'batch');
        if (f.type === 'batch') got.push({ ts: f.ts, updates: f.updates });
      }
      expect(plain(got)).toStrictEqual(plain(batches));
      stream.close();
    });
  }

  it('asks a server that refuses the columns layout again in pairs, unless the caller chose columns', async () => {
    const batches = randomBatches(8, 120);
    const dir = await tmpDir('tapedeck-client-old-');
    const archive = await Archive.open(dir, { flushIntervalMs: 0 });
    for (const b of batches) archive.writer!.append(b.updates, b.ts);
    await archive.writer!.flush();
    const app = await buildServer({ archive });
    // A server from before layouts: its stream route's schema refuses any parameter it does not know.
    const asked: string[] = [];
    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.includes('/stream')) return;
      asked.push(req.url.slice(req.url.indexOf('?')));
      if (req.url.includes('layout=')) await reply.code(400).send({ error: { code: 'TPD_BAD_REQUEST', message: 'querystring must NOT have additional properties' } });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = { app, archive, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, close: async () => { await app.close(); await archive.close(); } };
    const td = new TapedeckClient(server.url);
    const s = await td.createSession({ speed: 'unlimited' });
    const stream = td.stream(s.id);
    const it = stream[Symbol.asyncIterator]();
    expect((await take(it, () => true)).type).toBe('state');
    const got: Batch[] = [];
    while (got.length < batches.length) {
      const f = await take(it, (x) => x.type === 'batch');
      if (f.type === 'batch') got.push({ ts: f.ts, updates: f.updates });
    }
    expect(plain(got)).toStrictEqual(plain(batches));
    expect(asked).toEqual(['?coalesce=true&layout=columns', '?coalesce=true']);
    stream.close();
    // Columns asked for by name: the refusal is the caller's answer.
    const chosen = td.stream((await td.createSession({ speed: 'unlimited' })).id, { layout: 'columns' });
    await expect(chosen.ready()).rejects.toMatchObject({ status: 400 });
  });

  it('changes controls over REST and the socket, and maps HTTP errors to codes', async () => {
    server = await startServer(randomBatches(3, 50));
    const td = new TapedeckClient(server.url);
    const s = await td.createSession({ state: 'pause' });
    expect((await td.setControls(s.id, { speed: 3 })).controls.speed).toBe(3);
    expect((await td.listSessions()).map((x) => x.id)).toEqual([s.id]);
    const stream = td.stream(s.id);
    const it = stream[Symbol.asyncIterator]();
    await take(it, (f) => f.type === 'controls');
    stream.control({ speed: 'nope' });
    const e = await take(it, (f) => f.type === 'error');
    expect(e).toMatchObject({ code: 'TPD_BAD_CONTROL', control: 'speed' });
    await expect(td.setControls(s.id, { speed: 0 })).rejects.toMatchObject({ status: 400, code: 'TPD_BAD_CONTROL' });
    await td.deleteSession(s.id);
    await expect(td.getSession(s.id)).rejects.toBeInstanceOf(TapedeckClientError);
    // The server closed the stream with an `end` frame; iteration finishes.
    expect(await take(it, (f) => f.type === 'end')).toMatchObject({ reason: 'deleted' });
    expect((await it.next()).done).toBe(true);
  });

  it('reconnects after a dropped socket and resumes at the same position', async () => {
    const batches = randomBatches(5, 300);
    server = await startServer(batches);
    const td = new TapedeckClient(server.url);
    const s = await td.createSession({ state: 'pause', pos: batches[100]!.ts });
    const stream = td.stream(s.id);
    const it = stream[Symbol.asyncIterator]();
    expect(await take(it, (f) => f.type === 'state')).toMatchObject({ ts: batches[100]!.ts });
    stream.control({ pos: '+5' });
    expect(await take(it, (f) => f.type === 'state')).toMatchObject({ ts: batches[105]!.ts });
    stream.dropConnection();
    expect(await take(it, (f) => f.type === 'reconnected')).toMatchObject({ attempt: 1 });
    expect(await take(it, (f) => f.type === 'state')).toMatchObject({ ts: batches[105]!.ts });
    stream.control({ state: 'play', speed: 'unlimited' });
    const next = await take(it, (f) => f.type === 'batch');
    expect(next).toMatchObject({ ts: batches[106]!.ts });
    stream.close();
  });
});

describe('tapedeck play', () => {
  it('prints the state and each batch until a bounded end, then exits 0', async () => {
    const batches = randomBatches(8, 40);
    server = await startServer(batches);
    const { stdout } = await promisify(execFile)(process.execPath, [
      ...tapedeckArgs(), 'play', server.url, '--speed', 'unlimited', '--end', String(batches[19]!.ts), '--format', 'json',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^== state at beginning: \d+ paths \(0 with values\)/);
    const batchLines = lines.filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
    expect(batchLines).toHaveLength(20);
    expect(lines).toContain('== end (end)');
    // The player deletes its session on the way out.
    expect(server.app.sessions.size).toBe(0);
  });

  it('takes offsets that start with a minus sign as values (--start -10y)', async () => {
    const batches = randomBatches(9, 30);
    server = await startServer(batches);
    const { stdout } = await promisify(execFile)(process.execPath, [
      ...tapedeckArgs(), 'play', server.url, '--start', '-10y', '--speed', 'unlimited', '--end', String(batches[9]!.ts), '--format', 'json',
    ]);
    const batchLines = stdout.trim().split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
    expect(batchLines).toHaveLength(10);
  });

  it('takes keys on a terminal: space pauses, + doubles the speed, up seeks a minute on from the shown batch, q quits', async () => {
    // One batch a second for ten minutes.
    const t0 = 1_700_000_000_000_000;
    const batches: Batch[] = Array.from({ length: 600 }, (_, i) => ({ ts: t0 + i * 1_000_000, updates: [['/k/v', i]] }));
    server = await startServer(batches);
    // A pseudo-terminal from script(1): the player sees a TTY and reads raw keys.
    const cmd = [process.execPath, ...tapedeckArgs(), 'play', server.url, '--speed', '1', '--format', 'json'].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await vi.waitFor(() => expect(out).toMatch(/keys: space/), { timeout: 15_000 });
      await vi.waitFor(() => expect(server!.app.sessions.size).toBe(1));
      const s = server.app.sessions.list()[0]!;
      await vi.waitFor(() => expect(out).toMatch(/\/k\/v/));
      child.stdin.write(' ');
      await vi.waitFor(() => expect(s.controls.state).toBe('pause'));
      child.stdin.write('+');
      await vi.waitFor(() => expect(s.controls.speed).toBe(2));
      const before = s.controls.posUs!;
      child.stdin.write('\u001b[A');
      await vi.waitFor(() => expect(s.controls.posUs).toBe(before + 60_000_000));
      // Two keys in one read (a held key): both taken.
      child.stdin.write('\u001b[C\u001b[C');
      await vi.waitFor(() => expect(s.controls.posUs).toBe(before + 62_000_000));
      child.stdin.write('q');
      expect(await exited).toBe(0);
      expect(server.app.sessions.size).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);

  it('splits a terminal read into keys', () => {
    expect(splitKeys(' +\u001b[A\u001b[Cq')).toEqual([' ', '+', '\u001b[A', '\u001b[C', 'q']);
  });

  it('joins an option and a signed value, and leaves everything else alone', () => {
    expect(joinSignedValues(['play', 'u', '--start', '-1h', '--pos', '+5', '--speed', '2', '--filter', '/a/**', '-x'])).toEqual(
      ['play', 'u', '--start=-1h', '--pos=+5', '--speed', '2', '--filter', '/a/**', '-x'],
    );
  });
});
