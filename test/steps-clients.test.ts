/**
 * Play-next and burst through the clients: the TypeScript SDK (`playNext()`, `burst(n)`)
 * and the terminal player on a pseudo-terminal (script(1)) taking the keys `n` and `b`, and
 * ↑/↓ as steps relative to the playhead in the time grammar. What they show is checked
 * batch by batch against GET /api/v1/history.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { TapedeckClient, type StreamFrame } from '../clients/client/index.js';
import { render } from '../clients/cli/play.js';
import { startServer, type TestServer } from './helpers/server.js';
import { historyBatches } from './helpers/frames-ws.js';
import { tapedeckArgs } from './helpers/built.js';
import { tapedeck } from './helpers/cli.js';
import { until } from './helpers/until.js';
import type { Batch } from '../protocol/value.js';
import { PROTOCOL_LIMITS } from '../protocol/limits.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const T0 = 1_700_000_000_000_000;
const SECOND_US = 1_000_000;

function batchesEvery(n: number, stepUs: number): Batch[] {
  return Array.from({ length: n }, (_, i) => ({ ts: T0 + i * stepUs, updates: [['/k/v', i], ['/k/s', `s${i}`]] }));
}

/** Reads the stream until a `controls` frame; answers the batches before it and that frame's controls. */
async function untilControls(it: AsyncIterator<StreamFrame>): Promise<{ batches: Batch[]; state: string; posUs: number | null; clamped: boolean }> {
  const batches: Batch[] = [];
  let clamped = false;
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error('stream ended before a controls frame');
    const f = r.value;
    if (f.type === 'batch') batches.push({ ts: f.ts, updates: f.updates });
    if (f.type === 'info' && f.code === 'TPD_CLAMPED') clamped = true;
    if (f.type === 'controls') return { batches, state: f.controls.state, posUs: f.controls.posUs, clamped };
  }
}

describe('the SDK', () => {
  it.each(['json', 'msgpack'] as const)('playNext() and burst(n) bring exactly the next batches (%s)', async (format) => {
    server = await startServer(batchesEvery(30, SECOND_US));
    const history = await historyBatches(server.url);
    const td = new TapedeckClient(server.url);
    const s = await td.createSession({ state: 'pause', pos: history[4]!.ts });
    const stream = td.stream(s.id, { format, reconnect: false });
    const it = stream[Symbol.asyncIterator]();
    await untilControls(it); // the state at the position, then its controls
    stream.playNext();
    let r = await untilControls(it);
    expect(r.batches).toEqual([history[5]]);
    expect(r).toMatchObject({ state: 'pause', posUs: history[5]!.ts, clamped: false });
    stream.burst(12);
    r = await untilControls(it);
    expect(r.batches).toEqual(history.slice(6, 18));
    expect(r).toMatchObject({ state: 'pause', posUs: history[17]!.ts });
    // Past the end: what there is, and the notice.
    stream.burst(50);
    r = await untilControls(it);
    expect(r.batches).toEqual(history.slice(18));
    expect(r.clamped).toBe(true);
    stream.close();
    await td.deleteSession(s.id);
  });

  it('setControls() takes burst over REST and answers once it has gone out', async () => {
    server = await startServer(batchesEvery(10, SECOND_US));
    const history = await historyBatches(server.url);
    const td = new TapedeckClient(server.url);
    const s = await td.createSession({ state: 'pause', pos: 'beginning' });
    const stream = td.stream(s.id, { reconnect: false });
    const it = stream[Symbol.asyncIterator]();
    await untilControls(it);
    const after = await td.setControls(s.id, { burst: 4 });
    expect(after.controls.posUs).toBe(history[3]!.ts);
    expect((await untilControls(it)).batches).toEqual(history.slice(0, 4));
    await expect(td.setControls(s.id, { burst: PROTOCOL_LIMITS.burstBatchesMax + 1 })).rejects.toMatchObject({ status: 400, code: 'TPD_BAD_CONTROL' });
    stream.close();
  });
});

describe('the terminal player', () => {
  it('n plays the next batch and pauses, b bursts --burst batches, ↑ seeks a minute on from the playhead; the help line lists them', async () => {
    server = await startServer(batchesEvery(400, SECOND_US));
    const history = await historyBatches(server.url);
    const cmd = [process.execPath, ...tapedeckArgs(), 'play', server.url, '--pos', 'beginning', '--speed', '0.01', '--burst', '3', '--format', 'json', '--max-updates', '8']
      .map((a) => `'${a}'`).join(' ');
    // A wide terminal, so that no line is clipped to its width.
    const child = spawn('script', ['-qec', `stty cols 250; ${cmd}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const lines = (): string[] => out.split(/\r?\n/);
    const line = (b: Batch): string => render({ type: 'batch', ts: b.ts, updates: b.updates }, 8) as string;
    /** The batch lines printed so far. */
    const batchLines = (): string[] => lines().filter((l) => /^\d{4}-\d\d-\d\dT\S+ {2}\//.test(l));
    try {
      await until(() => /keys: space play\/pause {2}n next {2}b burst 3 /.test(out), 15_000, 'the help line');
      await until(() => server!.app.sessions.size === 1, 10_000, 'the session');
      const s = server.app.sessions.list()[0]!;
      // At 0.01x the second batch is 100 s away: only the keys move the player on.
      await until(() => batchLines().length === 1, 10_000, 'the first batch');
      expect(batchLines()).toEqual([line(history[0]!)]);
      child.stdin.write('n');
      await until(() => batchLines().length === 2 && s.controls.state === 'pause', 10_000, 'play-next');
      expect(batchLines()).toEqual(history.slice(0, 2).map(line));
      child.stdin.write('b');
      await until(() => batchLines().length === 5 && s.controls.posUs === history[4]!.ts, 10_000, 'the burst');
      expect(batchLines()).toEqual(history.slice(0, 5).map(line));
      expect(s.controls.state).toBe('pause');
      // ↑: a minute on from the batch shown (pos+1m), resolved by the server.
      child.stdin.write('\u001b[A');
      await until(() => s.controls.posUs === history[64]!.ts, 10_000, 'pos+1m');
      child.stdin.write('n');
      await until(() => batchLines().length === 6, 10_000, 'play-next after the seek');
      expect(batchLines()[5]).toBe(line(history[65]!));
      child.stdin.write('q');
      expect(await exited).toBe(0);
      expect(server.app.sessions.size).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 40_000);

  it('refuses a bad --burst before it creates a session, in the words of the burst control', async () => {
    const r = await tapedeck('play', 'http://127.0.0.1:9', '--burst', String(PROTOCOL_LIMITS.burstBatchesMax + 1));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^tapedeck: TPD_BAD_ARGUMENT: --burst: sends 1 to \d+ batches \(burstBatchesMax\)/);
  });
});
