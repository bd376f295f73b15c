/**
 * The config schema is the one contract: every key described, docs/config.md's table and
 * `tapedeck --example` generated from it, unknown keys refused at every depth naming the
 * path, and any document the schema accepts resolves (or is refused only by a relation
 * between keys the schema cannot state).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConfigSchema, resolveConfig, stripComments } from '../server/config.js';
import { validateConfig } from '../server/config/validate.js';
import { EXAMPLE_CONFIG } from '../clients/cli/example.js';
import { configKeys, renderConfigDoc, type SchemaNode } from '../scripts/gen-config-doc.js';
import { problems } from './helpers/config-problems.js';

const DOC = new URL('../docs/config.md', import.meta.url);

/** The example with the null sections set, so that every section of the schema is present. */
function everySection(): Record<string, unknown> {
  const doc = JSON.parse(stripComments(EXAMPLE_CONFIG)) as Record<string, unknown>;
  doc.kafka_sink = { brokers: ['127.0.0.1:9092'], topic: 't' };
  doc.ha = { redis: 'redis://127.0.0.1:6379' };
  doc.cluster = { name: 'c', shard: 's', redis: 'redis://127.0.0.1:6379' };
  return doc;
}

/** The object at a key path of configKeys (`auth.tokens[]` is the first token). */
function at(doc: Record<string, unknown>, path: string): Record<string, unknown> {
  let o: unknown = doc;
  for (const part of path.split('.')) {
    const [key, item] = [part.replace(/\[\]$/, ''), part.endsWith('[]')];
    o = (o as Record<string, unknown>)[key];
    if (item) o = (o as unknown[])[0];
  }
  return o as Record<string, unknown>;
}

describe('config schema', () => {
  it('describes every key', () => {
    const keys = configKeys();
    expect(keys.length).toBeGreaterThan(60);
    expect(keys.filter((k) => (k.node.description ?? '').trim() === '').map((k) => k.path)).toEqual([]);
  });

  it('docs/config.md holds the table npm run docs:config generates', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(doc, 'docs/config.md is stale: run npm run docs:config').toBe(renderConfigDoc(doc));
    for (const { path } of configKeys()) expect(doc).toContain(`| \`${path}\` |`);
  });

  it('the example names every key and validates as it stands', () => {
    const names = new Set(configKeys().map((k) => k.path.split('.').pop()?.replace(/\[\]$/, '')));
    for (const name of names) expect(EXAMPLE_CONFIG, name).toContain(`"${name}":`);
    expect(validateConfig(JSON.parse(stripComments(EXAMPLE_CONFIG)))).toHaveProperty('config');
    expect(() => resolveConfig(everySection())).not.toThrow();
  });

  it('refuses an unknown key in every section, naming its path', () => {
    const sections = configKeys().filter((k) => k.node.properties !== undefined || k.node.items?.properties !== undefined);
    expect(sections.map((k) => k.path)).toEqual(expect.arrayContaining(['record', 'publish.rate_limit', 'auth.tokens', 'sources', 'ha', 'simulator', 'cluster']));
    for (const { path, node } of [{ path: '', node: {} }, ...sections]) {
      const doc = everySection();
      const list = node.items?.properties !== undefined;
      const target = path === '' ? doc : at(doc, list ? `${path}[]` : path);
      target.bogus = 1;
      const shown = path === '' ? 'bogus' : `${list ? `${path}[0]` : path}.bogus`;
      expect(problems(doc), path).toContain(`${shown}: unknown key`);
    }
    // A key named like an Object.prototype member is no way around the check.
    expect(problems(JSON.parse('{"archive_directory":"d","__proto__":{"x":1}}'))).toMatch(/__proto__: unknown key/);
    expect(problems(JSON.parse('{"archive_directory":"d","record":{"constructor":1}}'))).toMatch(/record\.constructor: unknown key/);
  });

  it('refuses malformed documents naming why, never with a crash', () => {
    for (const doc of [null, 42, 'config', [], { archive_directory: '' }, { archive_directory: 'd', sources: {} }, { archive_directory: 'd', record: [] }]) {
      expect(problems(doc)).toMatch(/^config: /);
    }
    expect(problems({ archive_directory: 'd', sources: Array(1000).fill({ name: 'a', type: 'push' }) })).toMatch(/sources: must NOT have more than \d+ items/);
    expect(problems({ archive_directory: 'd', f: () => 1 })).toMatch(/must be a JSON document/);
  });

  it('leaves the caller\'s document as it was: defaults go into a copy, nothing of it is frozen', () => {
    const headers = { accept: 'text/csv' };
    const doc = { archive_directory: 'd', sources: [{ name: 'a', type: 'csv-matrix', url: 'http://127.0.0.1:1/c', headers }] };
    const before = structuredClone(doc);
    const c = resolveConfig(doc);
    expect(doc).toEqual(before);
    expect(Object.isFrozen(headers)).toBe(false);
    expect(Object.isFrozen(c.sources[0]?.options.headers)).toBe(true);
  });

  it('resolves any document the schema accepts, the same with its defaults written out', () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`config-schema property seed ${seed} (FC_SEED=${seed} to replay)`);
    fc.assert(
      fc.property(configDoc(), (doc) => {
        const filled = validateConfig(doc);
        if (!('config' in filled)) throw new Error(`generated an invalid document: ${filled.problems.join('; ')}`);
        const resolved = resolveConfig(doc);
        expect(resolveConfig(filled.config)).toEqual(resolved);
        expect(Object.isFrozen(resolved.publish)).toBe(true);
      }),
      { seed, numRuns: 150 },
    );
  });
});

// ---- Random documents from the schema ----

/**
 * Durations of at least 200 ms: the lower bounds resolve adds (lease_ttl >= 200ms, timeouts
 * and intervals > 0) are relations of meaning, not of shape.
 */
const positiveDuration = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 500 }), fc.constantFrom('s', 'm', 'h', 'd')).map(([n, u]) => `${n}${u}`),
  fc.integer({ min: 200, max: 10_000 }).map((n) => `${n}ms`),
  fc.record({ secs: fc.integer({ min: 1, max: 100_000 }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
);

/** Keys whose valid values are narrower than their schema says (checked by meaning in resolve). */
const SPECIAL: Readonly<Record<string, fc.Arbitrary<unknown>>> = {
  'record.spec': fc.array(fc.constantFrom('/**', '/fabric/*/cpu', '/twin/**', '/a/b', '/x/sw-*/**'), { minLength: 1, maxLength: 4 }),
  'publish.bind': fc.oneof(fc.constant(null), fc.tuple(fc.constantFrom('127.0.0.1', '[::1]', 'localhost', '0.0.0.0'), fc.integer({ min: 0, max: 65535 })).map(([h, p]) => `${h}:${p}`)),
  sources: fc.uniqueArray(
    fc.tuple(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), fc.constantFrom(
      { type: 'push' },
      { type: 'push', refuse_filtered: true, required: true },
      { type: 'csv-matrix', url: 'http://127.0.0.1:1/counters', interval: '2s' },
      { type: 'http-json', url: 'https://127.0.0.1:1/j', mode: 'leaves', max_staleness: '5m' },
    )).map(([name, entry]) => ({ name, ...entry })),
    { maxLength: 4, selector: (s) => s.name },
  ),
  ha: fc.constant(null),
  'cluster.globs': fc.array(fc.constantFrom('/site-a/**', '/b/*', '/c/d'), { maxLength: 3 }),
};

function arbitraryOf(node: SchemaNode, path: string): fc.Arbitrary<unknown> {
  const special = SPECIAL[path];
  if (special) return special;
  if (node.enum) return fc.constantFrom(...node.enum);
  const expect = node['x-expect'];
  if (expect?.includes('duration')) return expect.startsWith('null') ? fc.oneof(fc.constant(null), positiveDuration) : positiveDuration;
  if (expect !== undefined) return fc.oneof(fc.constant(null), fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.array(fc.string(), { maxLength: 3 })));
  const types = Array.isArray(node.type) ? node.type : [node.type];
  const value = valueOf(node, types.find((t) => t !== 'null'), path);
  return types.includes('null') ? fc.oneof(fc.constant(null), value) : value;
}

function valueOf(node: SchemaNode, type: string | undefined, path: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'integer':
      return fc.integer({ min: node.minimum ?? -(2 ** 31), max: node.maximum ?? 2 ** 31 });
    case 'number':
      return fc.double({ min: node.minimum ?? -1e9, max: node.maximum ?? 1e9, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'string':
      return node.pattern !== undefined
        ? fc.stringMatching(new RegExp(node.pattern)).filter((s) => s.length <= (node.maxLength ?? Infinity))
        : fc.string({ minLength: node.minLength ?? 0, maxLength: Math.max(node.minLength ?? 0, 40) });
    case 'array': {
      const items = arbitraryOf(node.items as SchemaNode, `${path}[]`);
      const bounds = { minLength: node.minItems ?? 0, maxLength: Math.min(node.maxItems ?? 4, 4) };
      return node.uniqueItems ? fc.uniqueArray(items, { ...bounds, comparator: 'SameValueZero' }) : fc.array(items, bounds);
    }
    case 'object': {
      const props = Object.entries(node.properties ?? {});
      const shape = Object.fromEntries(props.map(([k, n]) => [k, arbitraryOf(n, path === '' ? k : `${path}.${k}`)]));
      return fc.record(shape, { requiredKeys: node.required ?? [] });
    }
    default:
      throw new Error(`no generator for ${path} (${String(type)})`);
  }
}

/**
 * A document of the schema's shape, with the relations between keys that only resolve
 * checks made to hold: backoff_max >= backoff_initial (equal here), ha off.
 */
function configDoc(): fc.Arbitrary<Record<string, unknown>> {
  return arbitraryOf(ConfigSchema as unknown as SchemaNode, '').map((d) => {
    const doc = d as Record<string, unknown>;
    const hooks = doc.archive_hooks as Record<string, unknown> | null | undefined;
    if (hooks && (hooks.backoff_initial !== undefined || hooks.backoff_max !== undefined)) {
      hooks.backoff_initial = '1s';
      hooks.backoff_max = '1s';
    }
    // {simulator} in a url needs the simulator section; the generated urls never use it.
    return doc;
  });
}
