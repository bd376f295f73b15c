/**
 * The upstream PromQL grammar (@prometheus-io/lezer-promql), with its keyword lookups made
 * to see only their own keys. Its tokenizer finds keywords in plain objects by the
 * identifier's lower case (`keywordTokens[value.toLowerCase()]`), so an identifier that
 * names a member of Object.prototype in lower case (`constructor`, `__proto__`, in any case:
 * `Constructor`, `__PROTO__`) found that member instead of nothing and was tokenized as a
 * bogus keyword: `constructor`, a valid metric name that Prometheus takes, was a parse
 * error. The external specializers are replaced (lezer's `configure({ specializers })`) by
 * ones that answer "no keyword" (-1) for those identifiers and ask upstream otherwise.
 */
import type { Stack } from '@lezer/lr';
import { parser as upstream } from '@prometheus-io/lezer-promql';

type Specializer = (value: string, stack: Stack) => number;

/** True when `key` is one of Object.prototype's own members (what a plain object's lookup would find). */
function prototypeMember(key: string): boolean {
  return Object.prototype.hasOwnProperty.call(Object.prototype, key);
}

function ownKeysOnly(from: Specializer): { from: Specializer; to: Specializer } {
  return { from, to: (value, stack) => (prototypeMember(value.toLowerCase()) ? -1 : from(value, stack)) };
}

/** The grammar's external specializers (lezer keeps them on the parser; not part of its typed API). */
const externals = ((upstream as unknown as { specializerSpecs?: ReadonlyArray<{ external?: Specializer }> }).specializerSpecs ?? [])
  .map((s) => s.external)
  .filter((f): f is Specializer => typeof f === 'function');

export const promqlParser = upstream.configure({ specializers: externals.map(ownKeysOnly) });

/** How many external specializers were wrapped (the grammar has two; tests check it). */
export const wrappedSpecializers = externals.length;
