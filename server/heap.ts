/**
 * One V8 setting for the server process, applied before the server starts.
 *
 * Allocation-site pretenuring: when objects from one allocation site mostly survive a young
 * collection, V8 starts allocating that site's objects in the old generation directly. Heavy
 * ingest (large NDJSON bodies in flight) teaches it this for sites the request path shares
 * (request, reply, stream and parser objects); afterwards every small query allocates into
 * the old generation, which fills, and young collections slow down (more old-to-young
 * references to scan). Measured with `npm run bench:record` after its ingest phase (README,
 * Recording): the paced latest-state run had 63 GC pauses totalling 339 ms in 10 s (longest
 * 9.4 ms; p95 2.98 ms) with V8's default, 51 pauses totalling 51 ms (longest 2.2 ms; p95
 * 1.45 ms) with pretenuring off; ingest throughput was the same within noise.
 * TAPEDECK_V8_PRETENURING=1 keeps V8's default.
 */
import { setFlagsFromString } from 'node:v8';

let applied = false;

export function tuneHeapForServing(env: NodeJS.ProcessEnv = process.env): void {
  if (applied || env.TAPEDECK_V8_PRETENURING === '1') return;
  applied = true;
  setFlagsFromString('--no-allocation-site-pretenuring');
}
