/**
 * Child for test/connections-cap.test.ts: a server built as `tapedeck serve` builds it, in a
 * process started under a given `ulimit -n`; prints the open-file limit it read and the cap
 * its HTTP server took, as JSON, and exits.
 */
import { readFileSync } from 'node:fs';
import { Archive } from '../../storage/index.js';
import { buildServer } from '../../server/app.js';
import { softOpenFilesLimit } from '../../server/connections-cap.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'tapedeck-cap-'));
const archive = await Archive.open(dir);
const app = await buildServer({ archive });
process.stdout.write(`${JSON.stringify({ openFiles: softOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8')), cap: app.server.maxConnections })}\n`);
await app.close();
await archive.close();
rmSync(dir, { recursive: true, force: true });
