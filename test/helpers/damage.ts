/** Byte-level damage to archive files, and the CLI run as a child process, for damage tests. */
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tapedeckArgs } from './built.js';

const execFileP = promisify(execFile);

/** XORs `mask` (non-zero, so the byte always changes) into the byte at `offset`. */
export async function xorByte(file: string, offset: number, mask: number): Promise<void> {
  if ((mask & 0xff) === 0) throw new Error('a zero mask changes nothing');
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = (b[0] as number) ^ mask;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

/** Zeroes `length` bytes at `offset`; returns whether any byte changed. */
export async function zeroBytes(file: string, offset: number, length: number): Promise<boolean> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(length);
    const { bytesRead } = await fh.read(b, 0, length, offset);
    const changed = b.subarray(0, bytesRead).some((x) => x !== 0);
    await fh.write(Buffer.alloc(bytesRead), 0, bytesRead, offset);
    return changed;
  } finally {
    await fh.close();
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tapedeck ...args` in a child process and returns its exit code and output. */
export async function tapedeckCli(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [...tapedeckArgs(), ...args], { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
