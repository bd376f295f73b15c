/**
 * Finds and installs Tapedeck's Node addon (native/tapedeck-node, built by
 * scripts/install-native.sh) for the payload encoder (codec/native-payload.ts): the file
 * access kept out of the pure codec. docs/native.md.
 *
 * TAPEDECK_NATIVE_CODEC=off keeps the TypeScript encoder (both write the same bytes).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { installNativePayload, type NativePayloadAddon } from './codec/native-payload.js';

/** Where scripts/install-native.sh puts the addon, from the tree and from dist/. */
const ADDON = 'native/tapedeck-node/tapedeck_node.node';
/** Its build for x86-64-v3 CPUs (AVX2, BMI2, LZCNT...), used when this CPU has them. */
const ADDON_V3 = 'native/tapedeck-node/tapedeck_node.x86-64-v3.node';
const candidates = (file: string): string[] => [`../${file}`, `../../${file}`].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
const CANDIDATES = candidates(ADDON);
const CANDIDATES_V3 = candidates(ADDON_V3);
/** The CPU flags x86-64-v3 code may use (its definition; `abm` is how Linux names LZCNT). */
const X86_64_V3_FLAGS = ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'];

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

/** Which payload encoder writes all-number blocks: 'native' or 'typescript' (and why). */
export interface NativeCodecState {
  encoder: 'native' | 'typescript';
  reason: string;
}

let state: NativeCodecState | undefined;

/** Every build of the addon on disk that this CPU runs (for tests: each must write the same bytes). */
export function nativeCodecBuilds(): string[] {
  const v3 = cpuIsX8664V3() ? CANDIDATES_V3.find((p) => existsSync(p)) : undefined;
  const base = CANDIDATES.find((p) => existsSync(p));
  return [v3, base].filter((p): p is string => p !== undefined);
}

/** The addon file found (its x86-64-v3 build on a CPU that runs it), or undefined when it is not built. */
export function nativeCodecPath(): string | undefined {
  const v3 = cpuIsX8664V3() ? CANDIDATES_V3.find((p) => existsSync(p)) : undefined;
  return v3 ?? CANDIDATES.find((p) => existsSync(p));
}

/**
 * Installs the addon found on disk, once a process; says which encoder is in use. A missing
 * or unloadable addon is not an error: the TypeScript encoder writes the same bytes.
 */
export function loadNativeCodec(): NativeCodecState {
  if (state !== undefined) return state;
  if (process.env.TAPEDECK_NATIVE_CODEC === 'off') return (state = { encoder: 'typescript', reason: 'TAPEDECK_NATIVE_CODEC=off' });
  const path = nativeCodecPath();
  if (path === undefined) return (state = { encoder: 'typescript', reason: `${ADDON} is not built (scripts/install-native.sh)` });
  try {
    const addon = createRequire(import.meta.url)(path) as NativePayloadAddon;
    if (!installNativePayload(addon)) return (state = { encoder: 'typescript', reason: 'the addon cannot be used on this host' });
    return (state = { encoder: 'native', reason: path });
  } catch (err) {
    return (state = { encoder: 'typescript', reason: `the addon failed to load: ${(err as Error).message}` });
  }
}
