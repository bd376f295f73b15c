/**
 * The config file: one JSON document (with `//` comments allowed), validated once at start
 * against one schema (server/config/schema.ts: each key's type, constraints, default and
 * description, written once) with no unknown keys; every error names the key path and why.
 * Each source's own keys are validated by the schema its module exports. The result is
 * resolved (durations in ms, defaults filled) and frozen.
 */
export { ConfigSchema } from './config/schema.js';
export { resolveConfig, sourcesWithoutIdentity } from './config/resolve.js';
export { loadConfig, stripComments } from './config/load.js';
export { EMBEDDED_DEFAULT, PUBLISH_DEFAULTS, SIMULATOR_DEFAULTS } from './config/defaults.js';
export type { HookCommand, ServeConfig } from './config/serve-config.js';
