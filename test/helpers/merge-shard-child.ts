/**
 * A shard for the merged-read tests, in its own process so a test can kill -9 it: serves
 * the archive in argv[2] (written beforehand) on port argv[3] (0: any), without a recorder
 * (its archive is final). Prints `READY <url>` once listening.
 */
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';

const archive = await Archive.open(process.argv[2] as string, { readonly: true });
const app = await buildServer({ archive });
await app.listen({ port: Number(process.argv[3] ?? 0), host: '127.0.0.1' });
const addr = app.server.address() as { port: number };
process.stdout.write(`READY http://127.0.0.1:${addr.port}\n`);
