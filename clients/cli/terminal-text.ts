/**
 * Recorded text made safe to print on a terminal. Path names, string values, server messages
 * (which may quote a path) and file names are data an attacker may control; written raw, an
 * ESC or a C1 control would drive the terminal (move the cursor, rewrite earlier lines, set
 * the title or the clipboard with OSC 52), a newline would forge a line, and a bidi
 * override would show a name backwards. Each such character is written as its `\uXXXX`
 * escape, the way the JSON form writes a control character, so it shows instead of acting;
 * so is a lone surrogate (a terminal would show U+FFFD, a character the text does not hold).
 */

/** C0 controls, DEL, C1 controls, the bidi embeddings, overrides and isolates, lone surrogates. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function terminalText(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * At most `max` code units of `s` (`max - 1` and "…" when cut), never half a surrogate
 * pair: a cut pair would show as a lone surrogate's escape (or U+FFFD), a character the
 * text does not hold.
 */
export function clipText(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max - 1;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${s.slice(0, end)}…`;
}
