/**
 * Finds and installs Tapedeck's Node addon (native/tapedeck-node, built by
 * scripts/install-native.sh) for the payload encoder (codec/native-payload.ts): the file
 * access kept out of the pure codec. docs/native.md.
 *
 * TAPEDECK_NATIVE_CODEC=off keeps the TypeScript encoder (both write the same bytes).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { installNativePayload, type NativePayloadAddon } from './codec/native-payload.js';

/** Where scripts/install-native.sh puts the addon, from the tree and from dist/. */
const ADDON = 'native/tapedeck-node/tapedeck_node.node';
const CANDIDATES = [`../${ADDON}`, `../../${ADDON}`].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));

/** Which payload encoder writes all-number blocks: 'native' or 'typescript' (and why). */
export interface NativeCodecState {
  encoder: 'native' | 'typescript';
  reason: string;
}

let state: NativeCodecState | undefined;

/** The addon file found, or undefined when it is not built. */
export function nativeCodecPath(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
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
