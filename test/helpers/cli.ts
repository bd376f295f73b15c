/** Running the built `tapedeck` command to completion, for tests that check its output and exit code. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tapedeckArgs } from './built.js';

const run = promisify(execFile);

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs `tapedeck …args`; a non-zero exit is returned as its code rather than thrown. */
export async function tapedeck(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, tapedeckArgs(...args));
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as CliResult;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
