/**
 * The terminal clients against hostile recorded data: `tapedeck play` over a real server
 * and `tapedeck inspect` over a real archive print path names, string values and messages
 * that hold ESC sequences (cursor moves, clearing, OSC 52 clipboard writes), C1 controls
 * (which JSON text leaves as they are), newlines that would forge a line, bidi overrides and
 * lone surrogates. Nothing of them may reach the terminal as a control: each shows as its
 * `\uXXXX` escape (clients/cli/terminal-text.ts).
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import type { Value } from '../protocol/value.js';
import { tapedeck } from './helpers/cli.js';
import { startServer } from './helpers/server.js';
import { tmpDir } from './helpers/tmp.js';

const T0 = Date.UTC(2026, 0, 1) * 1000;
const S = 1_000_000;
const HOSTILE: Array<[string, Value]> = [
  ['/t/\u001b]52;c;cHduZWQ=\u0007clip', 1],
  ['/t/\u001b[2J\u001b[Hclear', 2],
  ['/t/a\nforged line', 3],
  ['/t/\u009b31mcsi', 4],
  ['/t/\u202eevil', 5],
  ['/t/str', 'x\u009b2J\u001b]0;title\u0007\u202e\ud800y'],
];
/** Any character a terminal acts on or cannot show as itself. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkOutput(out: string): void {
  expect(out).not.toMatch(UNSAFE);
  // Each line of the output is one of the client's lines: no path forged one.
  expect(out).not.toMatch(/^forged line/m);
  for (const shown of ['/t/\\u001b]52;c;cHduZWQ=\\u0007clip', '/t/\\u001b[2J\\u001b[Hclear', '/t/a\\u000aforged line', '/t/\\u009b31mcsi', '/t/\\u202eevil']) {
    expect(out).toContain(shown);
  }
}

describe('terminal clients against hostile recorded data', () => {
  it('tapedeck play shows hostile paths and values as escapes', async () => {
    const server = await startServer([0, 1].map((i) => ({ ts: T0 + i * S, updates: HOSTILE })));
    try {
      const r = await tapedeck('play', server.url, '--pos', 'beginning', '--end', String(T0 + S), '--speed', 'unlimited', '--max-updates', '50', '--format', 'json');
      expect(r.code, r.stderr).toBe(0);
      checkOutput(r.stdout);
      expect(r.stdout).toContain('"x\\u009b2J\\u001b]0;title\\u0007\\u202e\\ud800y"');
    } finally {
      await server.close();
    }
  });

  it('tapedeck inspect shows hostile paths and values as escapes', async () => {
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    a.writer!.append(HOSTILE, T0);
    await a.close();
    const r = await tapedeck('inspect', dir, '--paths', '--at', String(T0), '--head', '1');
    expect(r.code, r.stderr).toBe(0);
    checkOutput(r.stdout);
  });
});
