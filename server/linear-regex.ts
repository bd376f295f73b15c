/**
 * Regular expressions that run in linear time, so that no pattern can hold the event loop
 * (issue "Trust": every matcher linear). V8 has a non-backtracking engine (the `l` flag)
 * behind --enable-experimental-regexp-engine, switched on here at load; it refuses what it
 * cannot run in linear time (backreferences, lookarounds). PromQL's label regexes
 * (server/promql/regex.ts) and the Kafka source's topic_pattern use it.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--enable-experimental-regexp-engine');

/** `l` where this Node.js has the linear engine, else '' (then linearRegExp refuses). */
export const LINEAR_FLAG = ((): string => {
  try {
    // eslint-disable-next-line no-invalid-regexp -- `l` exists once the flag above is set
    new RegExp('a', 'l');
    return 'l';
  } catch {
    return '';
  }
})();

/**
 * `source` compiled for the linear engine (JavaScript syntax, `flags` besides `l`); throws
 * an Error saying why when the engine cannot run it (a backreference, a lookaround, the
 * `i` flag, a Node.js without the engine) or it is not a regular expression.
 */
export function linearRegExp(source: string, flags = ''): RegExp {
  if (LINEAR_FLAG === '') throw new Error('this Node.js lacks the linear-time RegExp engine');
  try {
    new RegExp(source, flags);
  } catch (err) {
    throw new Error(`not a regular expression: ${(err as Error).message}`);
  }
  try {
    return new RegExp(source, flags + LINEAR_FLAG);
  } catch {
    throw new Error('the linear-time engine cannot run it (no backreferences, lookarounds or `i` flag)');
  }
}
