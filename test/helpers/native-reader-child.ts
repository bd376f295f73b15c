/**
 * A process that only reads (test/native-payload.test.ts): opens the archive at argv[2]
 * read-only, waits for the background probe (loadNativeCodecLater), reads every block and
 * prints what it found as JSON.
 */
import { Archive } from '../../storage/archive.js';
import { crc32cInstalled } from '../../storage/codec/crc.js';
import { loadNativeCodecLater, nativeCodecState } from '../../storage/native-codec-file.js';

const a = await Archive.open(process.argv[2] as string, { readonly: true });
const chosen = await loadNativeCodecLater();
const c = a.cursor();
let updates = 0;
for (let b = await c.nextRaw(); b !== null; b = await c.nextRaw()) updates += b.to - b.from;
await a.close();
process.stdout.write(JSON.stringify({ chosen, state: nativeCodecState(), crc32cInstalled: crc32cInstalled(), updates }));
