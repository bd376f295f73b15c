/**
 * PromQL label regexes (RE2 syntax, fully anchored) as JavaScript RegExps that run in
 * linear time, so no user regex can hold the event loop (issue "Trust").
 *
 * V8 has a non-backtracking engine (the `l` flag) behind --enable-experimental-regexp-engine;
 * it is switched on at load. It refuses what it cannot run in linear time (backreferences,
 * lookarounds), which RE2 lacks as well. RE2 spellings JavaScript lacks are translated
 * (`(?P<name>`) or, when they have no JavaScript equivalent, refused naming the construct,
 * as is everything else the two engines would read differently.
 */
import { SERVER_LIMITS } from '../limits.js';
import { LINEAR_FLAG } from '../linear-regex.js';
import { badData } from './errors.js';

/** RE2 constructs with no JavaScript equivalent (or a different meaning), by their spelling. */
const REFUSED: ReadonlyArray<readonly [RegExp, string]> = [
  [/\\[QE]/, '\\Q...\\E quoting'],
  [/\\[Az]/, 'the \\A and \\z anchors'],
  [/\\C/, '\\C (any byte)'],
  [/\\[pP]/, 'Unicode classes \\p / \\P'],
  [/\[\[:/, 'POSIX classes [[:name:]]'],
];

/** A leading flag group `(?i)`, `(?s)` or `(?is)`: the only inline flags taken. */
const LEADING_FLAGS = /^\(\?([is]+)\)/;

/** Compiles a PromQL regex matcher value to an anchored, linear-time RegExp. */
export function compileLabelRegex(source: string): RegExp {
  if (source.length > SERVER_LIMITS.promqlRegexCharsMax) {
    throw badData(`regex of ${source.length} characters is longer than promqlRegexCharsMax (${SERVER_LIMITS.promqlRegexCharsMax})`);
  }
  if (LINEAR_FLAG === '') throw badData('regex matchers need the linear-time RegExp engine, which this Node.js lacks');
  for (const [re, what] of REFUSED) if (re.test(source)) throw badData(`regex ${JSON.stringify(source.slice(0, 80))} uses ${what}, which is not supported`);
  let body = source;
  let flags = LINEAR_FLAG;
  const lead = LEADING_FLAGS.exec(body);
  if (lead) {
    body = body.slice(lead[0].length);
    if (lead[1]?.includes('s')) flags += 's';
    // The linear engine has no `i` flag: letters become both cases instead.
    if (lead[1]?.includes('i')) body = caseless(body);
  }
  body = body.replace(/\(\?P</g, '(?<');
  const group = /\(\?(?!:|<[A-Za-z_])/.exec(body);
  if (group) throw badData(`regex ${JSON.stringify(source.slice(0, 80))} uses the group ${JSON.stringify(body.slice(group.index, group.index + 4))}, which is not supported (only (?:, (?P<name>, (?<name> and leading (?i) / (?s))`);
  checkRepeats(source, body);
  const width = repeatWeight(body);
  if (width > SERVER_LIMITS.promqlRegexRepeatsMax) {
    throw badData(`regex ${JSON.stringify(source.slice(0, 80))} repeats ${width} times (each repetition weighted by the counts around it), more than promqlRegexRepeatsMax (${SERVER_LIMITS.promqlRegexRepeatsMax}): matching costs that many steps per character of a value`);
  }
  try {
    return new RegExp(`^(?:${body})$`, flags);
  } catch (err) {
    throw badData(`error parsing regexp ${JSON.stringify(source.slice(0, 80))}: ${(err as Error).message}`);
  }
}

/** RE2 refuses counted repetition past 1000; so do we (the automaton grows with the count). */
function checkRepeats(source: string, body: string): void {
  for (const m of body.matchAll(/\{(\d+)(?:,(\d*))?\}/g)) {
    const n = Math.max(Number(m[1]), Number(m[2] || 0));
    if (n > 1000) throw badData(`regex ${JSON.stringify(source.slice(0, 80))}: invalid repeat count ${m[0]} (at most 1000)`);
  }
}

/**
 * How many repetitions a regex holds, each weighted by the counts of the repetitions around
 * it (`.*.*` 2, `(?:a.*){10}` 10, `[0-9]{1,3}` 3): about the most threads the linear engine
 * keeps alive at once, so matching costs about this many steps per character of the value.
 */
export function repeatWeight(body: string): number {
  const groups: number[] = [0]; // the weight of each open group, innermost last
  let last = 0; // the weight of the last atom (a quantifier applies to it)
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === '\\') {
      i++;
      last = 0;
    } else if (c === '[') {
      i++;
      if (body[i] === '^') i++;
      if (body[i] === ']') i++; // a leading ] is literal
      while (i < body.length && body[i] !== ']') i += body[i] === '\\' ? 2 : 1;
      last = 0;
    } else if (c === '(') {
      groups.push(0);
      if (body[i + 1] === '?') {
        i += 2; // (?: or (?<name>
        if (body[i] === '<') while (i < body.length && body[i] !== '>') i++;
      }
      last = 0;
    } else if (c === ')') {
      last = groups.pop() ?? 0;
      if (groups.length === 0) groups.push(0);
      groups[groups.length - 1] = (groups[groups.length - 1] as number) + last;
    } else if (c === '*' || c === '+' || c === '?' || (c === '{' && /^\{\d+(?:,\d*)?\}/.test(body.slice(i, i + 12)))) {
      let count = 1;
      if (c === '{') {
        const close = body.indexOf('}', i);
        const [lo, hi] = body.slice(i + 1, close).split(',');
        count = Math.max(1, Number(lo), hi ? Number(hi) : 0);
        i = close;
      }
      if (body[i + 1] === '?') i++; // lazy
      const weight = count * Math.max(1, last);
      groups[groups.length - 1] = (groups[groups.length - 1] as number) + weight - last;
      last = weight;
    } else last = 0;
  }
  return groups.reduce((a, b) => a + b, 0);
}

const other = (c: string): string => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());
const isLetter = (c: string | undefined): c is string => c !== undefined && c.length === 1 && c.toLowerCase() !== c.toUpperCase();

/** `(?i)abc` as `[aA][bB][cC]`; in classes, letters and letter ranges get their other case too. */
export function caseless(body: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === '\\') {
      out += body.slice(i, i + 2);
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      const to = body[i + 2];
      if (isLetter(c) && body[i + 1] === '-' && isLetter(to)) {
        out += `${c}-${to}${other(c)}-${other(to)}`;
        i += 2;
      } else out += isLetter(c) ? c + other(c) : c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (body[i + 1] === '^') out += body[++i];
      if (body[i + 1] === ']') out += body[++i]; // a leading ] is literal
      continue;
    }
    out += isLetter(c) ? `[${c}${other(c)}]` : c;
  }
  return out;
}
