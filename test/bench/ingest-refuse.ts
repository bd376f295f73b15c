/**
 * What refusing costs next to accepting: `node --import tsx test/bench/ingest-refuse.ts`.
 * A recording server in this process; POST /api/v1/ingest of 2 MB of malformed lines
 * (refused with TPD_TOO_MANY_BAD_LINES after ingestBadLinesMax of them) and of 2 MB of
 * good lines (recorded), each the best of ROUNDS. Prints one JSON object (ms, client side,
 * request sent to answer read).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { resolveConfig } from '../../server/config.js';
import { startServer } from '../../server/main.js';

const BODY_BYTES = 2 * 1024 * 1024;
const ROUNDS = 5;

const dir = await mkdtemp(join(tmpdir(), 'tapedeck-bench-refuse-'));
const srv = await startServer(resolveConfig({
  archive_directory: dir,
  record: { spec: ['/**'], flush_interval: '1s' },
  publish: { bind: '127.0.0.1:0', rate_limit: { max: 1_000_000 } },
  sources: [{ name: 'push', type: 'push' }],
}), { logger: pino({ level: 'silent' }) });

function repeatTo(line: string): string {
  return `${line}\n`.repeat(Math.ceil(BODY_BYTES / (line.length + 1)));
}

async function best(body: string, status: number): Promise<{ ms: number; answer: Record<string, unknown> }> {
  let ms = Infinity;
  let answer: Record<string, unknown> = {};
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
    answer = (await res.body.json()) as Record<string, unknown>;
    if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${JSON.stringify(answer).slice(0, 300)}`);
    ms = Math.min(ms, performance.now() - t);
  }
  return { ms: Math.round(ms * 10) / 10, answer };
}

const shapes = { notJson: 'nope', oneChar: '{', badPath: '{"updates":{"no-slash":1}}' };
const refused: Record<string, unknown> = {};
for (const [name, line] of Object.entries(shapes)) {
  const body = repeatTo(line);
  const r = await best(body, 400);
  refused[name] = { lines: body.length / (line.length + 1), ms: r.ms, code: (r.answer.error as { code: string }).code, linesRead: r.answer.lines_read };
}
const good = repeatTo(JSON.stringify({ updates: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`/bench/p${i}`, i * 1.5])) }));
const accepted = await best(good, 200);
await srv.close();
await rm(dir, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({
  bodyBytes: BODY_BYTES,
  rounds: ROUNDS,
  refused,
  accepted: { lines: accepted.answer.accepted_lines, ms: accepted.ms },
})}\n`);
