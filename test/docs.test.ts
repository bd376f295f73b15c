/**
 * The docs agree with the code: docs/limits.md is what scripts/gen-limits-doc.ts generates,
 * every limit says what it bounds, every relative link in README.md and docs/ resolves, and
 * the README's tour names only CLI commands and API routes that exist.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { limitRows, renderLimitsDoc } from '../scripts/gen-limits-doc.js';
import { declarationComments, exportComment, memberComments } from '../scripts/doc-comments.js';
import { ERRORS } from '../protocol/errors.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const read = (rel: string): string => readFileSync(join(ROOT, rel), 'utf8');

/** Markdown files whose links are checked: the README and every page in docs/. */
function markdownFiles(): string[] {
  return ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
}

/** Targets of inline links `[text](target)` outside fenced code blocks. */
export function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '');
  return [...prose.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

/** Relative link targets of one markdown file that name no existing file (anchors ignored). */
function brokenLinks(file: string, markdown: string): string[] {
  return linkTargets(markdown)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'))
    .filter((t) => !existsSync(join(ROOT, dirname(file), decodeURIComponent(t.split('#')[0]!))));
}

describe('docs/limits.md', () => {
  it('is what npm run docs:limits generates from the limit tables', () => {
    expect(read('docs/limits.md'), 'docs/limits.md is stale: run npm run docs:limits').toBe(renderLimitsDoc());
  });

  it('says what every limit bounds', () => {
    const rows = limitRows();
    expect(rows.length).toBeGreaterThan(50);
    const bare = rows.filter((r) => r.meaning.trim() === '').map((r) => r.name);
    expect(bare, 'add a doc comment on these keys in their source').toEqual([]);
  });

  it('lists the tables of every layer, the cursor and controls step limits among them', () => {
    const doc = renderLimitsDoc();
    for (const name of ['PROTOCOL_LIMITS.globBytesMax', 'STORAGE_LIMITS.batchUpdatesMax', 'SERVER_LIMITS.ingestBodyBytesMax', 'PLAYBACK_DEFAULTS.maxSessions', 'STORAGE_LIMITS.seekBatchesMax', 'PROTOCOL_LIMITS.seekStepsMax', 'HOOK_LIMITS.stdoutBytesMax']) {
      expect(doc).toContain(`| \`${name}\` |`);
    }
  });
});

/**
 * Limit names the docs or the error table still mention wrongly, each with the fix asked of
 * the file's owner. The test below fails when one of these is fixed, so the entry goes too.
 */
const PENDING_LIMIT_NAME_FIXES: Readonly<Record<string, string>> = {};

/** camelCase names of limits (`...Max`, `...High`, `...Target`) a text mentions. */
const limitNamesIn = (text: string): string[] => [...text.matchAll(/\b[a-z][a-zA-Z0-9]*(?:Max|High|Target)\b/g)].map((m) => m[0]);

describe('limit names in the docs and error messages', () => {
  it('name only limits that exist in a limit table', () => {
    const keys = new Set(limitRows().flatMap((r) => r.name.split('.').slice(1)));
    const texts: Array<[string, string]> = [
      ...markdownFiles().map((f): [string, string] => [f, read(f)]),
      ...Object.entries(ERRORS).map(([code, e]): [string, string] => [`protocol/errors.ts ${code}`, e.meaning]),
    ];
    const unknown = texts.flatMap(([where, text]) => limitNamesIn(text).filter((n) => !keys.has(n)).map((n) => `${where}: ${n}`));
    const stillPending = Object.keys(PENDING_LIMIT_NAME_FIXES).filter((n) => unknown.some((u) => u.endsWith(`: ${n}`)));
    expect(stillPending, 'a pending fix was made: remove it from PENDING_LIMIT_NAME_FIXES').toEqual(Object.keys(PENDING_LIMIT_NAME_FIXES));
    expect(unknown.filter((u) => !Object.keys(PENDING_LIMIT_NAME_FIXES).some((n) => u.endsWith(`: ${n}`)))).toEqual([]);
  });
});

describe('doc comments read from source text', () => {
  it('takes the comment right before each key, and none for a bare key', () => {
    const block = `{
      /** One. */
      a: 1,
      b: 2,
      /**
       * Three,
       * on two lines.
       */
      c: 3 * 1024,
    }`;
    expect([...memberComments(block)]).toEqual([['a', 'One.'], ['c', 'Three, on two lines.']]);
  });

  it('is not fooled by braces, colons and commas inside comments, strings and nested objects', () => {
    const source = `
      /** Table. */
      export const T = {
        /** seek({ batches: N }) bounds, { not a key: 1 }. */
        x: '{ y: 2, }',
        // a line comment with z: 3
        nested: { inner: 4, other: "}" },
        /** After the nested one. */
        last: \`\${'{'}\`,
      } as const;
      export const U = 5;`;
    expect([...declarationComments(source, 'T', 'const')]).toEqual([
      ['x', 'seek({ batches: N }) bounds, { not a key: 1 }.'],
      ['last', 'After the nested one.'],
    ]);
    expect(exportComment(source, 'T')).toBe('Table.');
    expect(exportComment(source, 'U')).toBeUndefined();
  });

  it('survives unterminated comments and strings and a missing declaration', () => {
    expect([...memberComments('{ /** never closed a: 1')]).toEqual([]);
    expect([...memberComments("{ a: 'never closed, b: 2 }")]).toEqual([]);
    expect([...declarationComments('const X = 1;', 'NOPE', 'const')]).toEqual([]);
    expect([...declarationComments('interface I { /** ok */ a?: number; b: (x: number, y: string) => void; /** c */ c: 1 }', 'I', 'interface')]).toEqual([['a', 'ok'], ['c', 'c']]);
  });
});

describe('links and the README tour', () => {
  it('finds links in prose and ignores ones in code blocks', () => {
    const md = 'See [a](docs/a.md) and [b](../b.md#x "title").\n\n```sh\necho [c](c.md)\n```\n[web](https://example.com)';
    expect(linkTargets(md)).toEqual(['docs/a.md', '../b.md#x', 'https://example.com']);
    expect(brokenLinks('README.md', '[gone](docs/no-such-page.md) [here](#top) [web](http://x)')).toEqual(['docs/no-such-page.md']);
  });

  it('every relative link in README.md and docs/*.md points to a file that exists', () => {
    const broken = markdownFiles().flatMap((f) => brokenLinks(f, read(f)).map((t) => `${f} -> ${t}`));
    expect(broken).toEqual([]);
  });

  it('the README links every page in docs/', () => {
    const readme = read('README.md');
    const pages = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'));
    expect(pages.filter((p) => !readme.includes(`](docs/${p})`))).toEqual([]);
  });

  it('docs/performance.md indexes every bench script in package.json', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const benches = scripts.filter((s) => s.startsWith('bench:'));
    expect(benches.length).toBeGreaterThan(3);
    const perf = read('docs/performance.md');
    expect(benches.filter((b) => !perf.includes(`| \`npm run ${b}\` |`))).toEqual([]);
  });

  it('the README names only tapedeck commands the CLI has', () => {
    const cases = new Set([...read('clients/cli/main.ts').matchAll(/case '([\w-]+)':/g)].map((m) => m[1]!));
    const used = [...read('README.md').matchAll(/npx tapedeck ([\w-]+)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(3);
    expect(used.filter((c) => !cases.has(c) && c !== '--example')).toEqual([]);
  });

  it('the README names only API routes the server registers', () => {
    const routes = readdirSync(join(ROOT, 'server/routes'))
      .flatMap((f) => [...read(`server/routes/${f}`).matchAll(/app\.(?:get|post|patch|put|delete)\b[^(]*\(\s*'(\/api\/[^']*)'/g)])
      .map((m) => new RegExp(`^${m[1]!.replace(/:\w+/g, '[^/]+')}$`));
    const used = [...read('README.md').matchAll(/8080(\/api\/[^\s'"?`]*)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(3);
    expect(used.filter((p) => !routes.some((r) => r.test(p)))).toEqual([]);
  });
});
