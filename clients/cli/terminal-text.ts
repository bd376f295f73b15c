/**
 * Recorded text made safe to print on a terminal. Path names, string values, server messages
 * (which may quote a path) and file names are data an attacker may control; written raw, an
 * ESC or a C1 control would drive the terminal (move the cursor, rewrite earlier lines, set
 * the title or the clipboard with OSC 52), a newline would forge a line, and a bidi
 * override would show a name backwards. Each such character is written as its `\uXXXX`
 * escape, the way the JSON form writes a control character, so it shows instead of acting;
 * so is a lone surrogate (a terminal would show U+FFFD, a character the text does not hold).
 */

import { visibleText } from '../../protocol/value-json.js';

/** C0 controls, DEL, C1 controls, the bidi embeddings, overrides and isolates, lone surrogates: protocol's rule, which the web player draws by too. */
export function terminalText(s: string): string {
  return visibleText(s);
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
