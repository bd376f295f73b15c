/**
 * Compaction by the running server (storage/live-compact.ts) under real playback sessions: a
 * recording server (server/main.ts) rotating at 64 KiB compacts the file it sealed and swaps
 * it in while sessions stand in it in every state — paused after a seek, paused after a step
 * back, playing paced (mid-file during the swap), playing at unlimited speed held by a client
 * that reads nothing (its column cursor holds a block of the old file), tailing, seeking again
 * and again, and one whose client drops without a word as the file is sealed. Afterwards each
 * session reads on, through its own cursor (bursts, paced play at 1000x, unlimited), and what
 * it sends is exactly the batches pushed after its position: times, paths and values, no gap,
 * no repeat; a state frame at a seek into the compacted file is the state computed from the
 * pushed batches; the server stays healthy. Fails when a cursor keeps its place from the
 * recorded file (storage/cursor.ts sync() not mapping it): old block indices name other
 * blocks in the compacted file.
 */
import type { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { DecodedFrame } from '../protocol/frames.js';
import type { Batch, Value } from '../protocol/value.js';
import { CONTROLS_PER_SECOND_MAX } from '../server/routes/sessions.js';
import type { Playhead } from '../server/sessions/playhead.js';
import type { Session } from '../server/sessions/session.js';
import { api } from './helpers/server.js';
import { batchesIn, FramesWs, historyBatches } from './helpers/frames-ws.js';
import { recordingServer, type RecordingServer } from './helpers/recording-server.js';
import { scheduleSeed } from './helpers/seed.js';
import { until } from './helpers/until.js';

/** Generous for a loaded 2-core machine: waits for events, never a timing target. */
const WAIT_MS = 60_000;
const ROTATE_BYTES = 65_536;
/** The first file is filled to about this many bytes before the sessions open: rotation is many requests away (one takes at most 7 batches, under 2 KB). */
const FILL_BYTES = 52_000;
const PATHS = 100;
/** Paths that first appear at this batch: a state before it shows them null. */
const LATE_PATHS = 20;
const LATE_FROM = 100;

let srv: RecordingServer | undefined;
const sockets: FramesWs[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.ws.terminate();
  await srv?.close();
  srv = undefined;
});

/** Long paths: the JSON frames from a session's place to the file's end are well over wsBufferHighBytes (1 MiB), so a client that reads nothing holds its session mid-file. */
const pathOf = (j: number): string => `/fabric/datacenter-east/leaf-${String(j % 10).padStart(2, '0')}/ethernet-port-${String(j).padStart(3, '0')}/counters/in_octets_total`;
const T0 = (Date.now() - 3 * 3_600_000) * 1000;

/** Batch i: counters that grow by small integers (they compress well, so the compaction is kept); not every path every batch. */
function batchAt(i: number): Batch {
  const updates: Array<[string, Value]> = [];
  for (let j = 0; j < PATHS + LATE_PATHS; j++) {
    if (j >= PATHS && i < LATE_FROM) continue;
    if ((i + j) % 7 === 3) continue;
    updates.push([pathOf(j), j * 1000 + i * (1 + (j % 3))]);
  }
  return { ts: T0 + i * 1_000_000, updates };
}

/** The state a seek to batch k shows: every path recorded so far, its last value at or before batch k, else null. */
function stateAt(pushed: readonly Batch[], k: number): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const b of pushed) for (const [p] of b.updates) out[p] = null;
  for (const b of pushed.slice(0, k + 1)) for (const [p, v] of b.updates) out[p] = v;
  return out;
}

/** Pushes the next `n` batches in one request and waits until they are committed (a block a request). */
async function push(s: RecordingServer, pushed: Batch[], n: number): Promise<void> {
  const lines: string[] = [];
  for (let k = 0; k < n; k++) {
    const b = batchAt(pushed.length + k);
    lines.push(JSON.stringify({ ts: b.ts, updates: Object.fromEntries(b.updates) }));
  }
  const r = await fetch(`${s.url}/api/v1/ingest?ack=durable`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${lines.join('\n')}\n` });
  expect(r.status, await r.text()).toBe(200);
  for (let k = 0; k < n; k++) pushed.push(batchAt(pushed.length));
}

async function metric(s: RecordingServer, line: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const row = text.split('\n').find((l) => l.startsWith(`${line} `));
  return row === undefined ? 0 : Number(row.slice(line.length + 1));
}
const COMPACTED = 'tapedeck_compaction_files_total{result="compacted"}';

/** xorshift32: the run's chunk sizes and seek times, replayed by its seed. */
function xorshift(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const head = (s: Session): Playhead => (s as unknown as { head: Playhead }).head;

interface Open {
  name: string;
  id: string;
  ws: FramesWs;
}

async function open(s: RecordingServer, name: string, body: Record<string, unknown>, opts: { format?: 'json' | 'msgpack'; coalesce?: boolean; hold?: boolean } = {}): Promise<Open> {
  const c = await api(s.url, 'POST', '/api/v1/sessions', body);
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  const id = c.body.id as string;
  const ws = await FramesWs.open(s.url, id, opts);
  // A client that reads nothing: the server stops sending past wsBufferHighBytes.
  if (opts.hold === true) ws.ws.pause();
  sockets.push(ws);
  return { name, id, ws };
}

const isState = (ts: number | null) => (f: DecodedFrame): boolean => f.type === 'state' && f.ts === ts;
const isControls = (f: DecodedFrame): boolean => f.type === 'controls';

/** Every batch the session sent, from its first frame on. */
const sentBy = (o: Open): Batch[] => batchesIn(o.ws.frames(0));

/** Waits until the session has sent the batch at `ts` (the last pushed). */
async function untilSent(o: Open, ts: number): Promise<void> {
  const sent = (): boolean => {
    if (o.ws.seen.some((x) => x.frame.type === 'error')) throw new Error(`${o.name}: an error frame`);
    return o.ws.seen.some((x) => x.frame.type === 'batch' && x.frame.ts === ts);
  };
  await until(sent, WAIT_MS, `${o.name}: the last batch`).catch((err: Error) => {
    const got = sentBy(o);
    throw new Error(`${err.message}: ${got.length} batches sent, the last at ${got.at(-1)?.ts}; frames ${o.ws.types(Math.max(0, o.ws.seen.length - 12))}`);
  });
}

/** `got` is `want` batch for batch; a failure names the first batch that differs (by its index among the pushed), not a diff of megabytes. */
function expectBatches(name: string, got: readonly Batch[], want: readonly Batch[], pushed: readonly Batch[]): void {
  let i = 0;
  while (i < Math.max(got.length, want.length) && isDeepStrictEqual(got[i], want[i])) i++;
  const index = (b: Batch | undefined): string => (b === undefined ? 'none' : `#${pushed.findIndex((x) => x.ts === b.ts)}`);
  const diff = i === got.length && i === want.length ? 'the same' : `${got.length} batches, ${want.length} expected; the first that differs is ${i}: batch ${index(got[i])}, expected ${index(want[i])}`;
  expect(`${name}: ${diff}`).toBe(`${name}: the same`);
}

describe('compaction by the running server under playback sessions', () => {
  it('sessions in every state read on after the swap exactly as recorded, and a seek into the compacted file shows the recorded state', async () => {
    const seed = scheduleSeed('LIVE_COMPACT_SESSIONS_SEED', 'live-compact-sessions');
    // Two streams, as the pushes and the seeks run side by side.
    const [rnd, rndSeek] = [xorshift(seed), xorshift(seed ^ 0x5eed)];
    const s = (srv = await recordingServer({ record: { spec: ['/**'], flush_interval: '100ms', rotate_size: ROTATE_BYTES } }));
    const pushed: Batch[] = [];
    /** Requests of 1 to 7 batches: the recorded file's blocks hold different numbers of batches, so old places map to varied new ones. */
    const chunk = (): number => 1 + Math.floor(rnd() * 7);

    // The first file, almost full.
    while ((s.archive.files.at(-1)?.committedBytes ?? 0) < FILL_BYTES) await push(s, pushed, chunk());
    expect(s.archive.files).toHaveLength(1);
    const first = pushed.length;
    expect(first).toBeGreaterThan(LATE_FROM + 50);
    expectBatches('history', await historyBatches(s.url), pushed, pushed);

    // Sessions in their states, all in the first file.
    const pSeek = Math.floor(first * 0.3);
    const pausedSeek = await open(s, 'paused after a seek', { state: 'pause', pos: 'beginning' });
    await pausedSeek.ws.waitFor(isControls);
    pausedSeek.ws.control({ pos: pushed[pSeek]!.ts });
    const at = await pausedSeek.ws.waitFor(isState(pushed[pSeek]!.ts));
    expect((pausedSeek.ws.seen[at]!.frame as { values: unknown }).values).toEqual(stateAt(pushed, pSeek));

    const pBack = Math.floor(first * 0.6);
    const pausedBack = await open(s, 'paused after a step back', { state: 'pause', pos: pushed[pBack]!.ts }, { format: 'msgpack' });
    await pausedBack.ws.waitFor(isState(pushed[pBack]!.ts));
    pausedBack.ws.control({ pos: '-5' });
    const back = await pausedBack.ws.waitFor(isState(pushed[pBack - 5]!.ts));
    expect((pausedBack.ws.seen[back]!.frame as { values: unknown }).values).toEqual(stateAt(pushed, pBack - 5));

    // Paced at real time (a batch a second): a few batches on by the swap, far from the file's end.
    const pPaced = Math.floor(first * 0.2);
    const paced = await open(s, 'playing paced', { pos: pushed[pPaced]!.ts, speed: 1 });
    await paced.ws.waitFor((f) => f.type === 'batch');

    // Unlimited, its client reading nothing: held mid-file with a block of the old file read as columns.
    const pFast = Math.floor(first * 0.1);
    const fast = await open(s, 'playing unlimited, held by its client', { pos: pushed[pFast]!.ts, speed: 'unlimited' }, { hold: true });
    const fastSession = (): Session => s.app.sessions.get(fast.id);
    await until(() => fastSession().waitingForClient && head(fastSession()).holdsColumns, WAIT_MS, 'the unlimited session held by its client, holding columns');

    const tail = await open(s, 'tailing', { state: 'tail' }, { coalesce: true });
    await until(() => s.app.sessions.get(tail.id).waitingForData, WAIT_MS, 'the tail session waiting for data');

    // The same, its client gone without a close frame as the file is sealed.
    const dropped = await open(s, 'playing unlimited, client dropped', { pos: pushed[pFast]!.ts, speed: 'unlimited' }, { hold: true });
    await until(() => s.app.sessions.get(dropped.id).waitingForClient, WAIT_MS, 'the dropped session held by its client');

    const seeker = await open(s, 'seeking', { state: 'pause', pos: 'beginning' });
    await seeker.ws.waitFor(isControls);

    // Every session stands in the first file.
    const firstLastTs = pushed[first - 1]!.ts;
    for (const o of [pausedSeek, pausedBack, paced, fast, dropped]) expect([o.name, s.app.sessions.get(o.id).controls.posUs! < firstLastTs]).toEqual([o.name, true]);

    // Seeks into the first file, one after another, until the swap has happened and a few after it.
    let seeking = true;
    let seeks = 0;
    let seeksAfterSwap = 0;
    const seekLoop = (async (): Promise<void> => {
      let from = seeker.ws.seen.length;
      while (seeking || seeksAfterSwap < 3) {
        const k = Math.floor(rndSeek() * first);
        const swapped = s.archive.files[0]!.gen > 0;
        seeker.ws.control({ pos: pushed[k]!.ts });
        const i = await seeker.ws.waitFor(isState(pushed[k]!.ts), from, WAIT_MS);
        expect([k, (seeker.ws.seen[i]!.frame as { values: unknown }).values]).toEqual([k, stateAt(pushed.slice(0, first), k)]);
        from = (await seeker.ws.waitFor(isControls, i, WAIT_MS)) + 1;
        seeks++;
        if (swapped) seeksAfterSwap++;
        // Half the stream's control rate: a quick server answers a seek in less than its share.
        await delay(2000 / CONTROLS_PER_SECOND_MAX);
      }
    })();
    seekLoop.catch(() => undefined); // awaited below; a failure before then is not unhandled

    // Record on until the file rotates; its client drops as it is sealed (the compaction runs).
    while (s.archive.files.length < 2) await push(s, pushed, chunk());
    const rotated = (dropped.ws.ws as unknown as { _socket: Socket })._socket;
    rotated.resetAndDestroy();
    await until(async () => (await metric(s, COMPACTED)) >= 1, WAIT_MS, 'the first file compacted and swapped in');
    expect(s.archive.files[0]!.gen).toBe(1);
    seeking = false;
    // The paced and the held sessions were mid-file during the swap (the test's premise), and still are.
    for (const o of [paced, fast]) expect([o.name, s.app.sessions.get(o.id).controls.posUs! < firstLastTs]).toEqual([o.name, true]);
    await seekLoop;
    expect(seeks).toBeGreaterThan(seeksAfterSwap);
    console.log(`first file: ${first} batches before the sessions opened, ${s.archive.files[0]!.committedBytes} bytes compacted; seeks ${seeks - seeksAfterSwap} before the swap, ${seeksAfterSwap} after; swap retries ${await metric(s, 'tapedeck_compaction_swap_retries_total')}`);

    // More after the swap, in the second file.
    for (let k = 0; k < 4; k++) await push(s, pushed, chunk());
    const lastTs = pushed.at(-1)!.ts;
    expectBatches('history', await historyBatches(s.url), pushed, pushed);

    // Each reads on through its own cursor: bursts for the paused ones, 1000x for the paced one.
    for (const [o, p] of [[pausedSeek, pSeek], [pausedBack, pBack - 5]] as const) {
      const from = o.ws.seen.length;
      o.ws.control({ burst: pushed.length - (p + 1) });
      await o.ws.waitFor(isControls, from, WAIT_MS);
      expectBatches(o.name, sentBy(o), pushed.slice(p + 1), pushed);
    }
    paced.ws.control({ speed: 1000 });
    fast.ws.ws.resume();
    for (const o of [paced, fast, tail]) await untilSent(o, lastTs);
    expectBatches(paced.name, sentBy(paced), pushed.slice(pPaced + 1), pushed);
    expectBatches(fast.name, sentBy(fast), pushed.slice(pFast + 1), pushed);
    const tailFrom = (tail.ws.frames(0).find((f) => f.type === 'state') as { ts: number }).ts;
    const tailAt = pushed.findIndex((b) => b.ts === tailFrom);
    expect(tailAt).toBeGreaterThan(0);
    expectBatches(tail.name, sentBy(tail), pushed.slice(tailAt + 1), pushed);

    // A seek into the compacted file: the recorded state, then the batches after it.
    const k = Math.floor(first * 0.45);
    let from = seeker.ws.seen.length;
    seeker.ws.control({ pos: pushed[k]!.ts });
    const i = await seeker.ws.waitFor(isState(pushed[k]!.ts), from, WAIT_MS);
    expect((seeker.ws.seen[i]!.frame as { values: unknown }).values).toEqual(stateAt(pushed, k));
    from = (await seeker.ws.waitFor(isControls, i, WAIT_MS)) + 1;
    seeker.ws.control({ burst: pushed.length - (k + 1) });
    const end = await seeker.ws.waitFor(isControls, from, WAIT_MS);
    expectBatches('after the seek into the compacted file', batchesIn(seeker.ws.frames(from, end)), pushed.slice(k + 1), pushed);

    // The server is healthy: the dropped client's session let go, nothing failed or given up,
    // and a new session reads the whole archive as recorded.
    const errors = (o: Open): string[] => o.ws.frames(0).flatMap((f) => (f.type === 'error' ? [`${o.name}: ${f.code} ${f.message}`] : []));
    expect([pausedSeek, pausedBack, paced, fast, tail, seeker].flatMap(errors)).toEqual([]);
    await until(() => !s.app.sessions.get(dropped.id).attached, WAIT_MS, 'the dropped session detached');
    expect((await api(s.url, 'GET', '/health')).body).toEqual({ ok: true });
    for (const r of ['failed', 'gave_up']) expect([r, await metric(s, `tapedeck_compaction_files_total{result="${r}"}`)]).toEqual([r, 0]);
    const fresh = await open(s, 'a new session', { pos: 'beginning', speed: 'unlimited' }, { format: 'msgpack', coalesce: true });
    await untilSent(fresh, lastTs);
    expectBatches(fresh.name, sentBy(fresh), pushed, pushed);
  }, 180_000);
});
