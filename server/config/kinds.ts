/**
 * Building blocks of the config schema, in TypeBox: a section (no unknown keys; a key with a
 * default is filled by validation, so it is required in the static type but not in the
 * document), a value or null, one of a few values, a duration, a hook command. Each keeps the
 * JSON Schema form ajv reports errors on in words (`enum`, `x-expect` on an anyOf), so a
 * message names the key path and why.
 */
import { Kind, OptionalKind, Type, type ObjectOptions, type SchemaOptions, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { DURATION_SCHEMA, type Duration } from '../duration.js';

/**
 * An object that refuses unknown keys. Keys holding a `default` are left out of `required`:
 * ajv (useDefaults) fills them, so after validation they are present, as the type says.
 */
export function section<P extends TProperties>(properties: P, options: ObjectOptions): TObject<P> {
  const schema = Type.Object(properties, { additionalProperties: false, ...options });
  const required = Object.entries(properties)
    .filter(([, s]) => s[OptionalKind] === undefined && s.default === undefined)
    .map(([k]) => k);
  const json = schema as { required?: string[] };
  if (required.length > 0) json.required = required;
  else delete json.required;
  return schema;
}

/**
 * `schema` or null, as `type: [T, "null"]` rather than an anyOf, so that an error inside an
 * object (an unknown key) is reported once, not once per branch.
 */
export function orNull<T extends TSchema>(schema: T, options: SchemaOptions): TUnsafe<Static<T> | null> {
  const { [Kind]: _kind, ...json } = schema as unknown as { [Kind]: string; type: string };
  return Type.Unsafe<Static<T> | null>({ ...json, type: [json.type, 'null'], ...options });
}

/** One of `values`, reported as "must be one of ...". */
export function choice<const V extends readonly (string | number)[]>(values: V, options: SchemaOptions): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ enum: [...values], ...options });
}

/** A duration (server/duration.ts: "5s", "1h30m", { "secs": 5, "nanos": 0 }). */
export function duration(options: SchemaOptions): TUnsafe<Duration> {
  return Type.Unsafe<Duration>({ ...DURATION_SCHEMA, ...options });
}

/** A duration or null. */
export function durationOrNull(options: SchemaOptions): TUnsafe<Duration | null> {
  return Type.Unsafe<Duration | null>({
    'x-expect': `null or ${DURATION_SCHEMA['x-expect']}`,
    anyOf: [{ type: 'null' }, ...DURATION_SCHEMA.anyOf],
    ...options,
  });
}

/** An archive hook `[ "program", [ "arg", ... ] ]`, run without a shell, or null. */
export function hookCommand(options: SchemaOptions): TUnsafe<[string, string[]] | null> {
  const command = Type.Tuple([Type.String({ minLength: 1 }), Type.Array(Type.String())]);
  return Type.Unsafe<[string, string[]] | null>({
    'x-expect': 'null or a command as [ "program", [ "arg", ... ] ]',
    anyOf: [{ type: 'null' }, { ...command }],
    ...options,
  });
}

const UNITS_MS: ReadonlyArray<readonly [string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];

/** A whole number of ms as the config writes it: 600000 -> "10m", 250 -> "250ms", 0 -> "0". */
export function durationText(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of UNITS_MS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
