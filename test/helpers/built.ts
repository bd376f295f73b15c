/**
 * What tests spawn: the built CLI and the built test children, from dist/ (rebuilt from the
 * sources by test/global-setup.ts at the start of every run), rather than the TypeScript
 * sources through tsx, which compiles them again in every child process.
 */
import { inject } from 'vitest';
import { join } from 'node:path';
import { DIST, ROOT } from './build-dist.js';

function checkBuilt(): void {
  if (!inject('distBuiltAtMs')) throw new Error('built: dist/ was not built for this run (test/global-setup.ts is not wired in vitest.config.ts)');
}

/** Arguments for spawn(process.execPath, …): the `tapedeck` command (bin/tapedeck.js) with `args`. */
export function tapedeckArgs(...args: string[]): string[] {
  checkBuilt();
  return [join(ROOT, 'bin', 'tapedeck.js'), ...args];
}

/** Arguments for spawn(process.execPath, …): test/helpers/<name>.ts as built into dist/, with `args`. */
export function childArgs(name: string, ...args: string[]): string[] {
  checkBuilt();
  return [join(DIST, 'test', 'helpers', `${name}.js`), ...args];
}
