#!/usr/bin/env node
// Entry point of the `tapedeck` command: runs the compiled CLI (built by `npm install`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/clients/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('tapedeck: the CLI is not built yet; run `npm install` (or `npm run build`) in the project first\n');
  process.exit(2);
}
const { run } = await import(main);
process.exitCode = await run(process.argv.slice(2));
