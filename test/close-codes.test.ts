/**
 * The close-code table is the only place close codes are spelled: docs/playback.md carries
 * it as generated, and no server route or client closes a socket with (or compares a close
 * event to) a bare number.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CLOSE_CODES, closeCodesMarkdown, closeIsFinal } from '../protocol/close-codes.js';

const ROOT = new URL('..', import.meta.url).pathname;
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

/** Files another change still has to move to the table (named in its report); empty when done. */
const NOT_YET_MOVED = new Set<string>();

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'vendor') continue;
    if (statSync(join(ROOT, p)).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** `.close(1000` or `code === 4000` / `4404 !== ev.code`: a close code written as a number. */
const BARE = /\.close\(\s*\d{4}\b|code\s*[!=]==?\s*\d{4}\b|\b\d{4}\s*[!=]==?\s*[\w.]*code\b/;

describe('close codes', () => {
  it('docs/playback.md lists the table as closeCodesMarkdown renders it', () => {
    const doc = read('docs/playback.md');
    const m = /<!-- close-codes:start -->\n([\s\S]*?)\n<!-- close-codes:end -->/.exec(doc);
    expect(m, 'docs/playback.md has no close-codes markers').not.toBeNull();
    expect(m?.[1], 'docs/playback.md close codes are stale: paste closeCodesMarkdown()').toBe(closeCodesMarkdown());
  });

  it('gives every name its own code, RFC 6455 codes below 4000 and ours in 4000-4999', () => {
    const codes = Object.values(CLOSE_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c >= 1000 && c <= 1015 || c >= 4000 && c <= 4999, String(c)).toBe(true);
  });

  it('tells a client not to reconnect after normal, replaced and no-such-session only', () => {
    const final = (Object.keys(CLOSE_CODES) as Array<keyof typeof CLOSE_CODES>).filter((k) => closeIsFinal(CLOSE_CODES[k]));
    expect(final.sort()).toEqual(['noSuchSession', 'normal', 'replaced']);
    expect(closeIsFinal(1005)).toBe(false);
  });

  it('no server route or client spells a close code as a number', () => {
    const offenders: string[] = [];
    for (const f of [...sources('server'), ...sources('clients')]) {
      if (NOT_YET_MOVED.has(f)) continue;
      read(f).split('\n').forEach((line, i) => {
        if (BARE.test(line)) offenders.push(`${relative('.', f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
