/**
 * Finds, checks and installs Tapedeck's Node addon (native/tapedeck-node, built by
 * scripts/install-native.sh) for the encoder of all-number blocks (codec/native-payload.ts):
 * the file access kept out of the pure codec. docs/native.md.
 *
 * A build is used only after a probe: a child process loads it and encodes a fixed block,
 * and its bytes must be the TypeScript encoder's. A build that cannot run here (a CPU
 * without the instructions it was built for: SIGILL), a damaged file (SIGBUS in dlopen), a
 * stale build (another encoder version or other bytes) then costs a child, not this process.
 *
 * TAPEDECK_NATIVE_CODEC=off keeps the TypeScript encoder (both write the same bytes).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ByteWriter } from './codec/bytes.js';
import { crc32cReference, installCrc32c } from './codec/crc.js';
import { BlockType, encodeFrame } from './codec/frame.js';
import { installNativePayload, nativePayloadInstalled, NATIVE_ENCODER_VERSION, type NativePayloadAddon } from './codec/native-payload.js';
import { encodeBatches } from './codec/payload-encode.js';
import { STORAGE_LIMITS } from './limits.js';

/** Where scripts/install-native.sh puts the addon, from the tree and from dist/. */
const ADDON = 'native/tapedeck-node/tapedeck_node.node';
/** Its build for x86-64-v3 CPUs (AVX2, BMI2, LZCNT...), tried first when this CPU has them. */
const ADDON_V3 = 'native/tapedeck-node/tapedeck_node.x86-64-v3.node';
const candidates = (file: string): string[] => [`../${file}`, `../../${file}`].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
const CANDIDATES = candidates(ADDON);
const CANDIDATES_V3 = candidates(ADDON_V3);
/** The CPU flags x86-64-v3 code may use (its definition; `abm` is how Linux names LZCNT). */
const X86_64_V3_FLAGS = ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'];

/** Which payload encoder writes all-number blocks: 'native' or 'typescript' (and why). */
export interface NativeCodecState {
  encoder: 'native' | 'typescript';
  reason: string;
}

let state: NativeCodecState | undefined;

/** Whether this CPU runs x86-64-v3 code (Linux on x86-64: its flags in /proc/cpuinfo). */
function cpuIsX8664V3(): boolean {
  if (process.arch !== 'x64' || process.platform !== 'linux') return false;
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    const flags = new Set(line?.[1]?.trim().split(/\s+/));
    return X86_64_V3_FLAGS.every((f) => flags.has(f));
  } catch {
    return false;
  }
}

/** Every build of the addon on disk worth trying here, in order (for tests: each must write the same bytes). */
export function nativeCodecBuilds(): string[] {
  const v3 = cpuIsX8664V3() ? CANDIDATES_V3.find((p) => existsSync(p)) : undefined;
  const base = CANDIDATES.find((p) => existsSync(p));
  return [v3, base].filter((p): p is string => p !== undefined);
}

/** The first build on disk worth trying, or undefined when none is built. */
export function nativeCodecPath(): string | undefined {
  return nativeCodecBuilds()[0];
}

/**
 * The probe's block: a few batches whose values take each kind of number column (decimal,
 * packed counters, XOR-ish and plain doubles, NaN, -0, Inf). Self-contained: its source is
 * run by the probe's child as well.
 */
function probeBlock(): { ts: number[]; counts: number[]; ids: number[]; vals: number[] } {
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const vals: number[] = [];
  let x = 7;
  for (let b = 0; b < 40; b++) {
    ts.push(1_763_000_000_000_000 + b * 1_000_000 + (b % 3));
    counts.push(12);
    for (let p = 0; p < 12; p++) {
      x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
      ids.push(p * 3 + (b % 2));
      const kind = p % 6;
      vals.push(kind === 0 ? x / 100 : kind === 1 ? b * 1000 + p : kind === 2 ? x / 3 : kind === 3 ? Math.sqrt(x) : kind === 4 ? [NaN, -0, Infinity, 0.1 + 0.2][b % 4] as number : 1e300 / (x + 1));
    }
  }
  return { ts, counts, ids, vals };
}

/**
 * The probe's CRC32Cs by `crc`, comma-separated: prefixes of a fixed run of bytes (lengths
 * on both sides of the folding's 16-, 64- and 256-byte strides), from seed 0 and from other
 * seeds. Self-contained: the probe's child runs its source with the build's crc32c.
 */
function probeCrcs(crc: (data: Uint8Array, seed: number) => number): string {
  const bytes = new Uint8Array(6007);
  let x = 12_345;
  for (let i = 0; i < bytes.length; i++) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    bytes[i] = x >>> 16;
  }
  const lengths = [0, 1, 7, 15, 16, 63, 64, 65, 255, 256, 1000, 4096, 6007];
  return [0, 0x9e37_79b9, 0xffff_ffff].flatMap((seed) => lengths.map((len) => crc(bytes.subarray(0, len), seed) >>> 0)).join(',');
}

/** The probe's child: loads the build named in argv and prints its payload and frame of probeBlock in hex, and its probeCrcs. */
const PROBE_SCRIPT = `
const a = require(process.argv[1]);
const block = (${probeBlock.toString()})();
if (typeof a.encoderVersion !== 'function') { console.log('no encoderVersion'); process.exit(0); }
const ts = Float64Array.from(block.ts), counts = Uint32Array.from(block.counts), ids = Int32Array.from(block.ids), vals = Float64Array.from(block.vals);
const out = new Uint8Array(1 << 16);
const n = a.encodeNumberPayload(ts, counts, ids, vals, out);
const frame = a.encodeNumberFrame(ts, counts, ids, vals, block.ts[0], block.ts[block.ts.length - 1]);
const crcs = typeof a.crc32c !== 'function' ? 'no-crc32c' : (${probeCrcs.toString()})((d, s) => a.crc32c(d, s));
console.log(a.encoderVersion() + ' ' + Buffer.from(out.subarray(0, Math.max(0, n))).toString('hex') + ' ' + (frame ? Buffer.from(frame).toString('hex') : 'null') + ' ' + crcs);
`;

/** What a build must print: this version and the TypeScript encoder's bytes for probeBlock. */
function probeAnswer(): string {
  if (nativePayloadInstalled()) throw new Error('the probe compares with the TypeScript encoder: no addon may be installed yet');
  const b = probeBlock();
  const ids = Int32Array.from(b.ids);
  const payload = encodeBatches({ ts: b.ts, counts: b.counts, ids, values: Float64Array.from(b.vals), batchCount: b.ts.length, updateCount: ids.length }, new ByteWriter(1 << 16)).slice();
  const frame = encodeFrame({ type: BlockType.DELTA, firstTs: b.ts[0] as number, lastTs: b.ts[b.ts.length - 1] as number, batches: b.ts.length, updates: ids.length }, payload);
  return `${NATIVE_ENCODER_VERSION} ${Buffer.from(payload).toString('hex')} ${Buffer.from(frame).toString('hex')} ${probeCrcs(crc32cReference)}`;
}

/**
 * Undefined when the addon build at `path` runs on this host and writes the TypeScript
 * encoder's bytes (checked in a child process); else why not. Call before any addon is installed.
 */
export function probeNativeBuild(path: string): string | undefined {
  return probe(path, probeAnswer());
}

function probe(path: string, want: string): string | undefined {
  const r = spawnSync(process.execPath, ['-e', PROBE_SCRIPT, path], { encoding: 'utf8', timeout: STORAGE_LIMITS.nativeProbeMs, maxBuffer: 1 << 20, env: { PATH: process.env.PATH ?? '' } });
  if (r.error !== undefined) return `its probe failed: ${r.error.message}`;
  if (r.signal !== null) return `its probe died of ${r.signal}`;
  if (r.status !== 0) return `its probe exited ${String(r.status)}: ${r.stderr.trim().split('\n')[0] ?? ''}`.slice(0, 300);
  return judge(r.stdout.trim(), want);
}

/** Undefined when a probe's output `got` is `want`; else why the build is refused. */
function judge(got: string, want: string): string | undefined {
  if (got === want) return undefined;
  const version = got.split(' ')[0];
  if (version !== String(NATIVE_ENCODER_VERSION)) return `it is encoder version ${version ?? '?'}, not ${NATIVE_ENCODER_VERSION} (a stale build)`;
  return got.split(' ').slice(0, 3).join(' ') === want.split(' ').slice(0, 3).join(' ') ? 'its CRC32C differs from @node-rs/crc32 on the probe bytes' : 'its bytes differ from the TypeScript encoder on the probe block';
}

/** Which encoder loadNativeCodec chose, or undefined when no archive was opened for writing yet (nothing probed). */
export function nativeCodecState(): NativeCodecState | undefined {
  return state;
}

/**
 * Installs the first build on disk that passes its probe, once a process; says which encoder
 * is in use. No usable build is not an error: the TypeScript encoder writes the same bytes.
 */
export function loadNativeCodec(): NativeCodecState {
  if (state !== undefined) return state;
  if (process.env.TAPEDECK_NATIVE_CODEC === 'off') return (state = { encoder: 'typescript', reason: 'TAPEDECK_NATIVE_CODEC=off' });
  const builds = nativeCodecBuilds();
  if (builds.length === 0) return (state = { encoder: 'typescript', reason: `${ADDON} is not built (scripts/install-native.sh)` });
  const want = probeAnswer();
  const refused: string[] = [];
  for (const path of builds) {
    const why = probe(path, want);
    if (why === undefined) {
      const failed = install(path);
      if (failed === undefined) return (state = { encoder: 'native', reason: path });
      refused.push(`${path}: ${failed}`);
    } else {
      refused.push(`${path}: ${why}`);
    }
  }
  return (state = { encoder: 'typescript', reason: refused.join('; ') });
}

/** Loads a probed build into this process: undefined, or why it cannot be used. */
function install(path: string): string | undefined {
  try {
    const addon = createRequire(import.meta.url)(path) as NativePayloadAddon;
    if (!installNativePayload(addon)) return 'it cannot be used on this host';
    installCrc32c(addon.crc32c.bind(addon));
    return undefined;
  } catch (err) {
    return `it failed to load: ${(err as Error).message}`;
  }
}
