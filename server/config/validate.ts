/**
 * Validation of a config document against ConfigSchema and of each source entry against the
 * schema its type exports, with ajv: every problem is one line naming the key path and why.
 * Validation fills the schema's defaults (useDefaults) into a copy of the document, so the
 * caller's object is never changed and the result has every key that has a default.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { SOURCE_TYPES } from '../sources/registry.js';
import { ConfigSchema, type RawConfig } from './schema.js';

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, useDefaults: true });
ajv.addVocabulary(['x-expect']);
const validateTop = ajv.compile<RawConfig>(ConfigSchema);
const sourceValidators = new Map<string, ValidateFunction>();

/** The compiled validator of a source type's own keys (the type is known to exist). */
export function sourceValidator(type: string): ValidateFunction {
  let v = sourceValidators.get(type);
  if (!v) {
    v = ajv.compile((SOURCE_TYPES[type] as { schema: object }).schema);
    sourceValidators.set(type, v);
  }
  return v;
}

/** The document validated with defaults filled, or the problems found. */
export function validateConfig(doc: unknown): { config: RawConfig } | { problems: string[] } {
  let copy: unknown;
  try {
    copy = structuredClone(doc);
  } catch {
    return { problems: ['(top level): must be a JSON document'] };
  }
  if (validateTop(copy)) return { config: copy };
  return { problems: describeErrors(validateTop.errors ?? []) };
}

/** `/sources/0/url` -> `sources[0].url`. */
function keyPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(top level)' : out;
}

/** One line per problem, naming the key path; anyOf failures are said once, in words. */
export function describeErrors(errors: readonly ErrorObject[], prefix = ''): string[] {
  const summarized = errors.filter((e) => e.keyword === 'anyOf' && (e.parentSchema as Record<string, unknown> | undefined)?.['x-expect']);
  const out: string[] = [];
  for (const e of errors) {
    if (summarized.some((s) => s !== e && e.schemaPath.startsWith(`${s.schemaPath}/`))) continue;
    const at = keyPath(prefix + e.instancePath);
    switch (e.keyword) {
      case 'additionalProperties':
        out.push(`${keyPath(prefix + e.instancePath, String(e.params.additionalProperty))}: unknown key`);
        break;
      case 'required':
        out.push(`${keyPath(prefix + e.instancePath, String(e.params.missingProperty))}: required key is missing`);
        break;
      case 'anyOf': {
        const expect = (e.parentSchema as Record<string, unknown> | undefined)?.['x-expect'];
        out.push(`${at}: must be ${typeof expect === 'string' ? expect : 'one of the allowed forms'}, got ${JSON.stringify(e.data)?.slice(0, 80)}`);
        break;
      }
      case 'enum':
        out.push(`${at}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(e.data)?.slice(0, 80)}`);
        break;
      default:
        out.push(`${at}: ${e.message ?? 'is invalid'}, got ${JSON.stringify(e.data)?.slice(0, 80)}`);
    }
  }
  return [...new Set(out)];
}
