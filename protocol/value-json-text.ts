/**
 * JSON text to a tree without a silent change: JSON.parse alone rounds an integer literal a
 * double cannot hold (9007199254740993 becomes 9007199254740992), turns a literal past the
 * largest double (1e400, or 400 digits) into Infinity, and keeps only the last of a key
 * written twice in one object (`{"/a":1,"/a":2}` loses the 1). Each of these is found here,
 * with where it sits, so that ingest refuses it (parseJsonText) and a poller of plain JSON
 * keeps its big integers exactly (parsePlainJsonText). Pure, and free of Node APIs.
 *
 * Cost: JSON.parse, a count of the `:` in the text against those its tree accounts for (one
 * a key, plus those inside keys and strings), and a look at each run of 16 digits or more.
 * Only text where they differ, with a run that is not an exact integer, with a non-finite
 * number or with a `\u` escape (which could hide a colon) is scanned character by character.
 */
import { TapedeckError } from './errors.js';
import { PROTOCOL_LIMITS } from './limits.js';
import { setOwn, type Value } from './value.js';

/** A place in a JSON text: object keys and array indexes from the top. */
export type JsonPlace = Array<string | number>;

export interface JsonTextIssue {
  kind: 'inexact-integer' | 'overflow' | 'duplicate-key';
  /** The number literal, or the repeated key. */
  token: string;
  at: JsonPlace;
  /** Where the number literal is in the text (start, end). */
  start: number;
  end: number;
}

/** `.a[2].b`; past 200 characters cut with `…` (a place 100 000 levels deep is no message). */
export function placeText(at: JsonPlace): string {
  let out = '';
  for (const k of at) {
    out += typeof k === 'number' ? `[${k}]` : `.${k}`;
    if (out.length > 200) return `${out.slice(0, 200)}…`;
  }
  return out;
}

/** The refusal of an issue (TPD_BAD_ARGUMENT naming where it is and what to send instead). */
export function issueError(issue: JsonTextIssue): TapedeckError {
  const where = placeText(issue.at) || 'value';
  const details = { at: issue.at.slice(0, 64) };
  switch (issue.kind) {
    case 'inexact-integer':
      return new TapedeckError('TPD_BAD_ARGUMENT', `${where}: integer ${issue.token.slice(0, 80)} is beyond 2^53 and would be rounded; send it as {"$bigint":"${issue.token.length <= 80 ? issue.token : '...'}"}`, details);
    case 'overflow':
      return new TapedeckError('TPD_BAD_ARGUMENT', `${where}: number ${issue.token.slice(0, 80)} is beyond the largest double and would become ${issue.token.startsWith('-') ? '-' : ''}Infinity; send {"$num":"${issue.token.startsWith('-') ? '-' : ''}Infinity"} if that is meant`, details);
    default:
      return new TapedeckError('TPD_BAD_ARGUMENT', `${where}: key ${JSON.stringify(issue.token).slice(0, 200)} is twice in one object; JSON would keep only the last one`, details);
  }
}

const LONG_DIGITS = /[0-9]{16}/;
const DIGIT_RUNS = /[0-9]{16,}/g;
const INTEGER_TOKEN = /^-?[0-9]+$/;

/** Colons in a string (keys and values hold them: times, URLs, IPv6). */
function colonsIn(s: string): number {
  let n = 0;
  for (let i = s.indexOf(':'); i >= 0; i = s.indexOf(':', i + 1)) n++;
  return n;
}

/**
 * The `:` a parsed tree accounts for: one a key, plus those inside its keys and strings; -1
 * when it holds a number that is not finite (an overflowing literal).
 */
function treeColons(j: unknown): number {
  let n = 0;
  const stack: unknown[] = [j];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') {
      n += colonsIn(x);
      continue;
    }
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) return -1;
      continue;
    }
    if (typeof x !== 'object' || x === null) continue;
    if (Array.isArray(x)) {
      for (const e of x) if (typeof e === 'object' || typeof e === 'number' || typeof e === 'string') stack.push(e);
      continue;
    }
    const o = x as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      n += 1 + colonsIn(k);
      const e = o[k];
      if (typeof e === 'object' || typeof e === 'number' || typeof e === 'string') stack.push(e);
    }
  }
  return n;
}

/**
 * True when the text may hold an issue: the scan is needed. Every `:` of the text is a
 * key's or inside a string, so without escapes (`\u003a` is a colon the text does not show)
 * the text has exactly the colons of its tree unless a repeated key's member was dropped.
 */
function suspicious(text: string, tree: unknown): boolean {
  if (text.includes('\\u')) return true;
  // A run of 16 digits or more may be an integer a double does not hold (shorter ones are
  // exact); a microsecond timestamp is such a run, and exact.
  if (LONG_DIGITS.test(text)) for (const run of text.match(DIGIT_RUNS) ?? []) if (!exactInteger(run)) return true;
  const inTree = treeColons(tree);
  return inTree < 0 || inTree !== colonsIn(text);
}

/** True when an integer literal names one double: its exact digits (2^60 written out) or the shortest text of a double (1152921504606847000). */
function exactInteger(token: string): boolean {
  const n = Number(token);
  if (!Number.isFinite(n)) return false;
  return String(n) === token || BigInt(n) === BigInt(token);
}

interface Container {
  array: boolean;
  key: string | number;
  keys: Set<string> | undefined;
}

/**
 * The issues of valid JSON text, in text order; `each` returns false to stop. Strings are
 * skipped; every number literal and every key is looked at.
 */
export function scanJsonText(text: string, each: (issue: JsonTextIssue) => boolean): void {
  const stack: Container[] = [];
  const at = (): JsonPlace => stack.map((s) => s.key);
  let expectKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push({ array: c === 0x5b, key: c === 0x5b ? 0 : '', keys: c === 0x5b ? undefined : new Set() });
      expectKey = c === 0x7b;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      i++;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.array) top.key = (top.key as number) + 1;
      else expectKey = true;
      i++;
    } else if (c === 0x22 /* " */) {
      const j = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (expectKey && top && !top.array) {
        const raw = text.slice(i + 1, j);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
        top.key = key;
        expectKey = false;
        if (top.keys?.has(key) && !each({ kind: 'duplicate-key', token: key, at: at(), start: i, end: j + 1 })) return;
        top.keys?.add(key);
      }
      i = j + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < text.length && numberChar(text.charCodeAt(j))) j++;
      const token = text.slice(i, j);
      const integer = INTEGER_TOKEN.test(token);
      const kind = integer ? (token.length >= 16 && !exactInteger(token) ? 'inexact-integer' : undefined) : Number.isFinite(Number(token)) ? undefined : 'overflow';
      if (kind && !each({ kind, token, at: at(), start: i, end: j })) return;
      i = j;
    } else {
      i++;
    }
  }
}

/** Index of the `"` closing the string that opens at `i` (valid JSON text). */
function stringEnd(text: string, i: number): number {
  let j = text.indexOf('"', i + 1);
  for (;;) {
    let k = j - 1;
    while (text.charCodeAt(k) === 0x5c) k--;
    // An even number of backslashes before it: the quote is not escaped.
    if ((j - 1 - k) % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
}

/** A character of a number literal after its first: digits, `.`, `e`, `E`, `+`, `-`. */
function numberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** The first issue of valid JSON text, if any. */
function firstIssue(text: string): JsonTextIssue | undefined {
  let first: JsonTextIssue | undefined;
  scanJsonText(text, (issue) => {
    first = issue;
    return false;
  });
  return first;
}

/**
 * JSON.parse for ingest: refuses (TPD_BAD_ARGUMENT, naming where) an integer literal a double
 * cannot hold (send {"$bigint": "..."}), a literal beyond the largest double (send
 * {"$num": "Infinity"}) and a key twice in one object. A literal that is the shortest text
 * of a double (what every JSON writer prints for 2^60) is that double; literals with a
 * fraction or exponent (2.5, 1e300) are the doubles nearest them.
 * Throws SyntaxError for text that is not JSON.
 */
export function parseJsonText(text: string): unknown {
  const j: unknown = JSON.parse(text);
  if (suspicious(text, j)) {
    const issue = firstIssue(text);
    if (issue) throw issueError(issue);
  }
  return j;
}

/**
 * Plain JSON (not the JSON form: a `$` key is a key) from a source Tapedeck does not speak
 * to, such as a polled API, to a value: an integer literal a double cannot hold becomes a
 * bigint with its exact digits. A literal beyond the largest double or a key twice in one
 * object has no exact value: refused (TPD_BAD_ARGUMENT naming where).
 * Throws SyntaxError for text that is not JSON.
 */
export function parsePlainJsonText(text: string): Value {
  const j: unknown = JSON.parse(text);
  if (!suspicious(text, j)) return j as Value;
  const bigints: JsonTextIssue[] = [];
  let refusal: JsonTextIssue | undefined;
  scanJsonText(text, (issue) => {
    if (issue.kind !== 'inexact-integer') {
      refusal = issue;
      return false;
    }
    bigints.push(issue);
    return true;
  });
  if (refusal) throw issueError(refusal);
  if (bigints.length === 0) return j as Value;
  const long = bigints.find((b) => b.token.length - (b.token.charCodeAt(0) === 45 ? 1 : 0) > PROTOCOL_LIMITS.bigintDigitsMax);
  if (long) throw new TapedeckError('TPD_BAD_ARGUMENT', `${placeText(long.at) || 'value'}: integer of ${long.token.length} characters; a bigint has at most ${PROTOCOL_LIMITS.bigintDigitsMax} digits (bigintDigitsMax)`, { at: long.at.slice(0, 64) });
  // Each such literal becomes a string no text of the document holds, then a bigint.
  let mark = '\u0000tdbig';
  while (holdsStringStarting(j, mark)) mark += '_';
  let out = '';
  let from = 0;
  for (const b of bigints) {
    out += `${text.slice(from, b.start)}${JSON.stringify(mark + b.token)}`;
    from = b.end;
  }
  return restoreBigints(JSON.parse(out + text.slice(from)), mark) as Value;
}

function holdsStringStarting(j: unknown, mark: string): boolean {
  const stack: unknown[] = [j];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') {
      if (x.startsWith(mark)) return true;
    } else if (typeof x === 'object' && x !== null) {
      for (const e of Object.values(x)) stack.push(e);
    }
  }
  return false;
}

function restoreBigints(x: unknown, mark: string): unknown {
  if (typeof x === 'string') return x.startsWith(mark) ? BigInt(x.slice(mark.length)) : x;
  if (typeof x !== 'object' || x === null) return x;
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) x[i] = restoreBigints(x[i], mark);
    return x;
  }
  const o = x as Record<string, unknown>;
  for (const k of Object.keys(o)) setOwn(o, k, restoreBigints(o[k], mark));
  return o;
}
