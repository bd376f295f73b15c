/**
 * Child process for the sidecar kill test: opens the archive given as argv[2] and builds
 * the per-series sidecars of its sealed files, slowly (argv[3]: updates per second), printing
 * `TEMP <path>` when a build's temporary file exists and `DONE` when every build is over.
 * The parent kills it with SIGKILL at a random moment.
 */
import { Archive } from '../../storage/archive.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';
import { seriesIndexOf } from '../../storage/series-index/store.js';
import { buildSidecar } from '../../storage/series-index/build.js';

const limits = STORAGE_LIMITS as { -readonly [K in keyof typeof STORAGE_LIMITS]: number };
limits.seriesIndexBuildUpdatesPerS = Number(process.argv[3]);
limits.seriesIndexSliceUpdatesMax = 97;
limits.seriesIndexWriteBytes = 512;
const a = await Archive.open(process.argv[2] as string, { flushIntervalMs: 0 });
const store = seriesIndexOf(a);
await store.start();
// The store's own queue builds them; this second, explicit build of the first sealed file
// tells the parent when a temporary file exists.
await store.whenIdle();
const first = a.files.find((f) => f.sealed);
if (first) await buildSidecar(a, first, { onTemp: (path) => process.stdout.write(`TEMP ${path}\n`), pace: () => new Promise((r) => setTimeout(r, 5)) });
process.stdout.write('DONE\n');
await a.close();
