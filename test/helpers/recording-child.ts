/**
 * A recording server in a child process (test/helpers/recording-server-child.ts, built into
 * dist/), for tests that kill it with SIGKILL and start it again over the same archive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { childArgs } from './built.js';

export interface RecordingChild {
  proc: ChildProcess;
  url: string;
  /** The signal that ended the child (null: it exited by itself). */
  exited: Promise<NodeJS.Signals | null>;
}

/** Starts the child over `dir` with one source of `type`; resolves once it listens (rejects, with its stderr, if it exits first). */
export async function startRecordingChild(dir: string, type: 'push' | 'remote_write', flushInterval?: string, rotateSize?: number): Promise<RecordingChild> {
  const extra = flushInterval === undefined ? [] : rotateSize === undefined ? [flushInterval] : [flushInterval, String(rotateSize)];
  const proc = spawn(process.execPath, childArgs('recording-server-child', dir, type, ...extra), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_code, signal) => resolve(signal)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.startsWith('READY ')) resolve(line.slice(6));
    });
    void exited.then(() => reject(new Error(`the server child exited before READY: ${stderr}`)));
  });
  return { proc, url, exited };
}
