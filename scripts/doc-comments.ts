/**
 * Reads the doc comments of an object literal's keys from TypeScript source text, so that
 * docs/limits.md can explain each limit in the words its source uses. A small scanner, not
 * a parser: it knows comments, strings and braces, which is all the limit tables contain.
 */

/** The text of a `/** ... *\/` or `//` comment as one line (paragraphs joined). */
export function commentText(raw: string): string {
  const body = raw.startsWith('//') ? raw.replace(/^\/\/\s?/gm, '') : raw.replace(/^\/\*\*?/, '').replace(/\*\/$/, '');
  return body
    .split('\n')
    .map((line) => line.replace(/^\s*\*\s?/, '').trim())
    .filter((line) => line.length > 0)
    .join(' ');
}

/** The header comment of a source file, paragraphs kept (blank comment lines split them). */
export function fileHeaderComment(source: string): string[] {
  const m = /^\s*\/\*\*([\s\S]*?)\*\//.exec(source);
  if (!m?.[1]) return [];
  const lines = m[1].split('\n').map((line) => line.replace(/^\s*\*\s?/, '').trim());
  const paragraphs: string[] = [];
  let current: string[] = [];
  for (const line of lines) {
    if (line.length > 0) {
      current.push(line);
    } else if (current.length > 0) {
      paragraphs.push(current.join(' '));
      current = [];
    }
  }
  if (current.length > 0) paragraphs.push(current.join(' '));
  return paragraphs;
}

/** Index just past the comment or string that starts at i, or i if none starts there. */
function skipCommentOrString(text: string, i: number): number {
  if (text.startsWith('/*', i)) {
    const end = text.indexOf('*/', i + 2);
    return end < 0 ? text.length : end + 2;
  }
  if (text.startsWith('//', i)) {
    const end = text.indexOf('\n', i);
    return end < 0 ? text.length : end;
  }
  const q = text[i];
  if (q === "'" || q === '"' || q === '`') {
    let j = i + 1;
    while (j < text.length && text[j] !== q) j += text[j] === '\\' ? 2 : 1;
    return j + 1;
  }
  return i;
}

/** The `{ ... }` that starts at or after `from`, braces in comments and strings ignored. */
function braceBlock(text: string, from: number): string | undefined {
  const open = text.indexOf('{', from);
  if (open < 0) return undefined;
  let depth = 0;
  for (let i = open; i < text.length; ) {
    const skipped = skipCommentOrString(text, i);
    if (skipped !== i) {
      i = skipped;
      continue;
    }
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(open, i + 1);
    i++;
  }
  return undefined;
}

/**
 * Doc comment of each top-level member of an object literal or interface body (`{ ... }`):
 * the comment right before `key:` (or `key?:`). A key without one is absent from the map.
 */
export function memberComments(block: string): Map<string, string> {
  const out = new Map<string, string>();
  let depth = 0;
  let pending: string | undefined;
  let expectingMember = false;
  for (let i = 0; i < block.length; ) {
    const skipped = skipCommentOrString(block, i);
    if (skipped !== i) {
      if (depth === 1 && block.startsWith('/*', i)) pending = commentText(block.slice(i, skipped));
      i = skipped;
      continue;
    }
    const ch = block[i]!;
    if (ch === '{' || ch === '(' || ch === '[') {
      depth++;
      if (depth === 1) expectingMember = true;
    } else if (ch === '}' || ch === ')' || ch === ']') {
      depth--;
    } else if (depth === 1 && (ch === ',' || ch === ';')) {
      expectingMember = true;
    } else if (depth === 1 && expectingMember && /[A-Za-z_$]/.test(ch)) {
      const m = /^([A-Za-z_$][\w$]*)\??\s*:/.exec(block.slice(i));
      if (m?.[1]) {
        if (pending !== undefined) out.set(m[1], pending);
        i += m[0].length;
      }
      pending = undefined;
      expectingMember = false;
      continue;
    }
    i++;
  }
  return out;
}

/** The doc comment right before `export const NAME`, if any. */
export function exportComment(source: string, name: string): string | undefined {
  const at = source.search(new RegExp(`export const ${name}\\b`));
  if (at < 0) return undefined;
  const m = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*$/.exec(source.slice(0, at));
  return m ? commentText(m[0].trim()) : undefined;
}

/** Member comments of `export const NAME = { ... }` in source, or of `interface NAME { ... }`. */
export function declarationComments(source: string, name: string, kind: 'const' | 'interface'): Map<string, string> {
  const at = source.search(new RegExp(kind === 'const' ? `export const ${name}\\b` : `interface ${name}\\b`));
  if (at < 0) return new Map();
  const block = braceBlock(source, kind === 'const' ? source.indexOf('=', at) : at);
  return block ? memberComments(block) : new Map();
}
