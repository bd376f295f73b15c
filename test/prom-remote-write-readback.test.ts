/**
 * Remote write: the retry of a request after a restart (server/sources/remote-write.ts
 * notRecorded, remote-write-gate.ts) at the edges of the read-back. A real server over a
 * real archive, closed and started again on the same directory: the new process remembers
 * no request, as after a crash. A request recorded in part is made by posting its first
 * batches alone, which leaves the archive as a crash amid the request does (its batches are
 * appended in time order, each whole). Prometheus drops a request answered 400: a retry
 * refused loses whatever of it was not recorded yet.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { request } from 'undici';
import { resolveConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/main.js';
import { readArchive } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { lengthDelimited, snappyLiteral, varint } from './helpers/promql-peers.js';
import { numberBits } from './helpers/nan.js';

const T0 = 1_700_000_000_000;

/** A WriteRequest of series named by `__name__` alone, each sample's value given as its 64 bits (NaN payloads kept). */
function writeRequest(series: Array<[string, Array<[number, bigint]>]>): Buffer {
  const out: number[] = [];
  for (const [name, samples] of series) {
    const s: number[] = [];
    const label: number[] = [];
    lengthDelimited(1, Buffer.from('__name__'), label);
    lengthDelimited(2, Buffer.from(name), label);
    lengthDelimited(1, label, s);
    for (const [tsMs, bits] of samples) {
      const sample: number[] = [];
      const dv = new DataView(new ArrayBuffer(8));
      dv.setBigUint64(0, bits, true);
      sample.push((1 << 3) | 1, ...new Uint8Array(dv.buffer));
      varint(2 << 3, sample);
      varint(tsMs, sample);
      lengthDelimited(2, sample, s);
    }
    lengthDelimited(1, s, out);
  }
  return snappyLiteral(Uint8Array.from(out));
}

function bitsOf(v: number): bigint {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, v);
  return dv.getBigUint64(0);
}

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function serve(dir: string, spec: string[] = ['/**']): Promise<RunningServer> {
  await running?.close();
  running = await startServer(resolveConfig({
    archive_directory: dir,
    record: { spec, flush_interval: '1h' },
    publish: { bind: '127.0.0.1:0' },
    sources: [{ name: 'prom', type: 'remote_write' }],
  }), { logger: pino({ level: 'silent' }) });
  return running;
}

async function post(s: RunningServer, body: Buffer): Promise<string> {
  const res = await request(`${s.url}/api/v1/write`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' }, body });
  return `${res.statusCode} ${await res.body.text()}`.trim();
}

/** Every sample in the archive as `path@ms=bits`, in archive order. */
async function samples(dir: string): Promise<string[]> {
  await running?.close();
  running = undefined;
  return (await readArchive(dir)).flatMap((b) => b.updates.map(([p, v]) => `${p}@${Math.floor(b.ts / 1000)}=${numberBits(v)}`));
}

describe('remote write retry after a restart, read back', () => {
  it('takes the retry of a request holding NaNs of any payload, signalling ones included, recorded whole or in part', async () => {
    // Quiet NaNs with payloads, signalling NaNs (kept bit for bit by the archive), -0, Inf, a number.
    const values = [0x7ff8000000000001n, 0xfff8000000000000n, 0x7ff0000000000001n, 0x7ff4000000000000n, 0xfff0000000001234n, bitsOf(-0), bitsOf(Infinity), bitsOf(1.5)];
    const series = (scrapes: number): Array<[string, Array<[number, bigint]>]> =>
      values.map((bits, i) => [`v${i}`, Array.from({ length: scrapes }, (_x, k): [number, bigint] => [T0 + k * 1000, bits])]);
    const want = Array.from({ length: 3 }, (_x, k) => values.map((bits, i) => `/prom/v${i}@${T0 + k * 1000}=${bits.toString(16)}`)).flat();

    // Recorded whole, then sent again.
    const whole = await tmpDir();
    expect(await post(await serve(whole), writeRequest(series(3)))).toBe('204');
    expect(await post(await serve(whole), writeRequest(series(3)))).toBe('204');
    expect(await samples(whole)).toEqual(want);

    // Recorded in part (its first two scrapes), then sent again whole: the third is recorded.
    const part = await tmpDir();
    expect(await post(await serve(part), writeRequest(series(2)))).toBe('204');
    expect(await post(await serve(part), writeRequest(series(3)))).toBe('204');
    expect(await samples(part)).toEqual(want);
  });

  it('takes the retry of a request holding series the record spec leaves out, recorded whole or in part', async () => {
    const one = bitsOf(1);
    const series = (scrapes: number): Array<[string, Array<[number, bigint]>]> =>
      ['keep', 'drop'].map((name) => [name, Array.from({ length: scrapes }, (_x, k): [number, bigint] => [T0 + k * 1000, one])]);
    const spec = ['/prom/keep'];
    const want = [0, 1, 2].map((k) => `/prom/keep@${T0 + k * 1000}=${one.toString(16)}`);

    const whole = await tmpDir();
    expect(await post(await serve(whole, spec), writeRequest(series(3)))).toBe('204');
    expect(await post(await serve(whole, spec), writeRequest(series(3)))).toBe('204');
    expect(await samples(whole)).toEqual(want);

    const part = await tmpDir();
    expect(await post(await serve(part, spec), writeRequest(series(2)))).toBe('204');
    expect(await post(await serve(part, spec), writeRequest(series(3)))).toBe('204');
    expect(await samples(part)).toEqual(want);
  });

  it('takes the retry of a request reaching further back than remoteWriteReadBackSpanMsMax, recorded in part', async () => {
    // Prometheus catching up from its WAL: few series, so one request spans 15 minutes (61 scrapes 15 s apart).
    const scrapes = 61;
    const series = (n: number): Array<[string, Array<[number, bigint]>]> =>
      ['a', 'b', 'c'].map((name, i) => [name, Array.from({ length: n }, (_x, k): [number, bigint] => [T0 + k * 15_000, bitsOf(i * 1000 + k)])]);
    const want = Array.from({ length: scrapes }, (_x, k) => ['a', 'b', 'c'].map((name, i) => `/prom/${name}@${T0 + k * 15_000}=${bitsOf(i * 1000 + k).toString(16)}`)).flat();

    const part = await tmpDir();
    expect(await post(await serve(part), writeRequest(series(50)))).toBe('204');
    expect(await post(await serve(part), writeRequest(series(scrapes)))).toBe('204');
    expect(await samples(part)).toEqual(want);

    const whole = await tmpDir();
    expect(await post(await serve(whole), writeRequest(series(scrapes)))).toBe('204');
    expect(await post(await serve(whole), writeRequest(series(scrapes)))).toBe('204');
    expect(await samples(whole)).toEqual(want);

    // Not recorded before (the archive's last batch is another series'): older than the archive, refused whole as before.
    const other = await tmpDir();
    const lastMs = T0 + (scrapes - 1) * 15_000;
    expect(await post(await serve(other), writeRequest([['x', [[lastMs, bitsOf(1)]]]]))).toBe('204');
    expect(await post(await serve(other), writeRequest(series(scrapes)))).toMatch(/^400 .*TPD_REMOTE_WRITE_OUT_OF_ORDER/);
    expect(await samples(other)).toEqual([`/prom/x@${lastMs}=${bitsOf(1).toString(16)}`]);
  });
});
