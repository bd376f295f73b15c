/**
 * The native addon cannot take the process down (review of the tenth session): a build that
 * cannot run here (SIGILL on a CPU without its instructions, SIGBUS in dlopen of a damaged
 * file) or a stale one is found by a probe in a child process and passed over; a block the
 * addon cannot hold is refused before any allocation (a failed Rust allocation aborts).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { installNativePayload, nativePayloadInstalled, type NativePayloadAddon } from '../storage/codec/native-payload.js';
import { Archive } from '../storage/archive.js';
import { nativeCodecBuilds, probeNativeBuild } from '../storage/native-codec-file.js';
import { readAll } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';

const builds = nativeCodecBuilds();
const off = process.env.TAPEDECK_NATIVE_CODEC === 'off';

describe.skipIf(off)('native addon safety', () => {
  it('passes every build on disk that this CPU runs', () => {
    expect(builds.length).toBeGreaterThan(0);
    for (const b of builds) expect(probeNativeBuild(b), b).toBeUndefined();
  });

  it('passes over damaged files without harm to this process', async () => {
    const dir = await tmpDir();
    const whole = readFileSync(builds[0] as string);
    const cases: Array<[string, Uint8Array]> = [
      ['cut to 1 000 bytes', whole.subarray(0, 1000)],
      ['cut to 100 000 bytes', whole.subarray(0, 100_000)],
      ['cut to 300 000 bytes', whole.subarray(0, 300_000)],
      ['empty', new Uint8Array(0)],
      ['text', new TextEncoder().encode('not a shared object\n')],
    ];
    for (const [what, bytes] of cases) {
      const path = join(dir, `${what.replace(/\W+/g, '-')}.node`);
      writeFileSync(path, bytes);
      const why = probeNativeBuild(path);
      expect(why, what).toMatch(/probe (died|exited|failed)/);
    }
    // A build whose bytes are not the TypeScript encoder's is refused: here, a module that
    // answers the right version with other bytes.
    const liar = join(dir, 'liar.cjs');
    writeFileSync(
      liar,
      `const real = require(${JSON.stringify(builds[0])});
       module.exports = { encoderVersion: () => real.encoderVersion(), encodeNumberPayload: (...a) => { const n = real.encodeNumberPayload(...a); a[4][n - 1] ^= 1; return n; }, encodeNumberFrame: real.encodeNumberFrame };`,
    );
    expect(probeNativeBuild(liar)).toMatch(/bytes differ/);
    const stale = join(dir, 'stale.cjs');
    writeFileSync(stale, `const real = require(${JSON.stringify(builds[0])}); module.exports = { ...real, encoderVersion: () => 0 };`);
    expect(probeNativeBuild(stale)).toMatch(/stale build/);
    // A build whose CRC32C is wrong for one length only (past the folding's 256-byte stride).
    const crcLiar = join(dir, 'crc-liar.cjs');
    writeFileSync(crcLiar, `const real = require(${JSON.stringify(builds[0])}); module.exports = { ...real, crc32c: (d, s) => (real.crc32c(d, s) ^ (d.length === 1000 ? 1 : 0)) >>> 0 };`);
    expect(probeNativeBuild(crcLiar)).toMatch(/CRC32C differs/);
  });

  it('puts an addon that throws aside: the TypeScript encoder writes the block, the append does not fail', async () => {
    const real = createRequire(import.meta.url)(builds[0] as string) as NativePayloadAddon;
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    let calls = 0;
    const throwing: NativePayloadAddon = {
      encoderVersion: () => real.encoderVersion(),
      encodeNumberPayload: () => {
        calls++;
        throw new Error('a panic in the addon');
      },
      encodeNumberFrame: () => {
        calls++;
        throw new Error('a panic in the addon');
      },
      crc32c: (data, seed) => real.crc32c(data, seed),
    };
    expect(installNativePayload(throwing)).toBe(true);
    try {
      const w = a.writer!;
      const ids = Uint32Array.of(w.pathId('/a'), w.pathId('/b'));
      for (let i = 0; i < 20_000; i++) w.appendColumns(ids, Float64Array.of(i / 4, -i), 1_763_000_000_000_000 + i * 1000);
      await w.flush();
      expect(calls).toBeGreaterThan(0);
      expect(nativePayloadInstalled()).toBe(false);
      const back = await readAll(a.cursor());
      expect(back.length).toBe(20_000);
      expect(back[19_999]?.updates).toEqual([['/a', 19_999 / 4], ['/b', -19_999]]);
    } finally {
      installNativePayload(real);
      await a.close();
    }
  });

  it.each(builds)('refuses, without allocating, a block it could not hold (%s)', (build) => {
    // Under an address-space limit, 25 M updates announced as one: a refusal (-1), never an
    // abort of the process on a failed allocation.
    const script = `
      const a = require(${JSON.stringify(build)});
      const nu = 25_000_000;
      const r = [
        a.encodeNumberPayload(Float64Array.of(1), Uint32Array.of(1), new Int32Array(nu), new Float64Array(nu), new Uint8Array(16)),
        a.encodeNumberPayload(Float64Array.of(1), Uint32Array.of(nu), new Int32Array(nu), new Float64Array(nu), new Uint8Array(16)),
        a.encodeNumberFrame(Float64Array.of(1), Uint32Array.of(nu), new Int32Array(nu), new Float64Array(nu), 1, 1),
      ];
      console.log(JSON.stringify(r));`;
    const r = spawnSync('bash', ['-c', `ulimit -v 3000000; exec "${process.execPath}" -e "$0"`, script], { encoding: 'utf8', timeout: 60_000 });
    expect({ signal: r.signal, status: r.status, stderr: r.stderr.split('\n')[0] }).toMatchObject({ signal: null, status: 0 });
    expect(JSON.parse(r.stdout.trim())).toEqual([-1, -1, null]);
  });
});
