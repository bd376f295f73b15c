/**
 * A Tapedeck server in a child process, for tests of requests that may hold a server's event
 * loop: a server held in the test's own process would hold the test's loop too, and the
 * /health probes that are the test's evidence with it. The child runs `script` (an ES
 * module text, the sources through tsx) with `args` (given the child's scratch directory)
 * and prints one line of JSON, `{ "url": ... }`, once it listens.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The repository's root: the child's working directory, and where `source` finds modules. */
export const ROOT = new URL('../..', import.meta.url).pathname;

/** A module of the repository as a string literal for a child's script: `await import(${source('server/app.ts')})`. */
export function source(rel: string): string {
  return JSON.stringify(join(ROOT, rel));
}

export interface ChildServer {
  readonly url: string;
  /** The child's scratch directory (removed by close). */
  readonly dir: string;
  /** The child's exit code once it has exited (null: killed by a signal), else undefined. */
  readonly exitCode: number | null | undefined;
  /** Whether GET /health answers 200 within `ms` (a held event loop does not). */
  healthAnswers(ms: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface ChildServerOptions {
  /** The script's arguments (process.argv[1...]), given the scratch directory. */
  args?: (dir: string) => string[];
  /** Node's options before `--import tsx` (e.g. a heap size). */
  nodeArgs?: string[];
}

export async function startChildServer(script: string, opts: ChildServerOptions = {}): Promise<ChildServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-child-'));
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', '--input-type=module', '-e', script, ...(opts.args?.(dir) ?? [])], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let exitCode: number | null | undefined;
  child.stderr.on('data', (d) => (stderr += String(d)));
  child.once('exit', (code) => (exitCode = code));
  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`server exited (${String(code)}) before listening: ${stderr}`)));
      createInterface({ input: child.stdout }).on('line', (l) => resolve((JSON.parse(l) as { url: string }).url));
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    dir,
    get exitCode() {
      return exitCode;
    },
    async healthAnswers(ms: number): Promise<boolean> {
      try {
        return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(ms) })).status === 200;
      } catch {
        return false;
      }
    },
    async close(): Promise<void> {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ArchiveServerOptions {
  /** Modules the fill uses, by the name it binds: { seriesToPath: 'protocol/prom-path.ts' }. */
  imports?: Record<string, string>;
  /** The server records too (a server/recorder.ts Recorder over the archive). */
  recorder?: boolean;
  /** Node's options for the child (e.g. a heap size). */
  nodeArgs?: string[];
}

/**
 * A server (server/app.ts buildServer) in a child process over a new archive, filled first
 * by `fill`: code run with `archive` (opened writable, storage/index.ts) and the bindings of
 * `imports` in scope; the writer is flushed after it.
 */
export function startArchiveServer(fill: string, opts: ArchiveServerOptions = {}): Promise<ChildServer> {
  const imports = Object.entries(opts.imports ?? {}).map(([name, rel]) => `const { ${name} } = await import(${source(rel)});`);
  const script = [
    `const { Archive } = await import(${source('storage/index.ts')});`,
    `const { buildServer } = await import(${source('server/app.ts')});`,
    ...imports,
    opts.recorder === true ? `const { Recorder } = await import(${source('server/recorder.ts')});` : '',
    'const archive = await Archive.open(process.argv[1], { flushIntervalMs: 0 });',
    fill,
    'await archive.writer.flush();',
    opts.recorder === true ? 'const app = await buildServer({ archive, recorder: await Recorder.open(archive) });' : 'const app = await buildServer({ archive });',
    "await app.listen({ port: 0, host: '127.0.0.1' });",
    "console.log(JSON.stringify({ url: 'http://127.0.0.1:' + app.server.address().port }));",
  ].join('\n');
  return startChildServer(script, { args: (dir) => [join(dir, 'archive')], ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}) });
}

/** A fill of `paths` fabric counters in 25 batches one second apart from `firstUs` (paths that globs must walk). */
export function fabricFill(paths: number, firstUs: number): string {
  return `for (let b = 0; b < 25; b++) {
  const updates = [];
  for (let i = 0; i < ${paths} / 25; i++) updates.push(['/fabric/sw-' + b + '/if-' + i + '/octets_in_counter_value', i]);
  archive.writer.append(updates, ${firstUs} + b * 1_000_000);
}`;
}

/** A fill of `series` ifInOctets series whose `instance` is `valueChars` characters long (label values a regex must walk). */
export function longLabelFill(series: number, valueChars: number): string {
  return `const updates = [];
for (let i = 0; i < ${series}; i++) updates.push([seriesToPath({ name: 'ifInOctets', labels: { instance: 'a'.repeat(${valueChars} - String(i).length) + i } }), i]);
archive.writer.append(updates, Date.now() * 1000 - 60_000_000);`;
}

/** The imports longLabelFill needs (startArchiveServer's `imports`). */
export const LONG_LABEL_IMPORTS = { seriesToPath: 'protocol/prom-path.ts' };

/**
 * A recording server (server/main.ts startServer, as `tapedeck serve` runs it, logging
 * nothing) in a child process, from the config `config` returns for the scratch directory.
 */
export function startRecordingServer(config: (dir: string) => unknown, nodeArgs: string[] = []): Promise<ChildServer> {
  const script = [
    "const { pino } = await import('pino');",
    `const { resolveConfig } = await import(${source('server/config.ts')});`,
    `const { startServer } = await import(${source('server/main.ts')});`,
    "const srv = await startServer(resolveConfig(JSON.parse(process.argv[1])), { logger: pino({ level: 'silent' }) });",
    'console.log(JSON.stringify({ url: srv.url }));',
  ].join('\n');
  return startChildServer(script, { args: (dir) => [JSON.stringify(config(dir))], nodeArgs });
}

/** Runs `script` (an ES module, through tsx) in a child process to its end: its exit code and output. */
export async function runScript(script: string, nodeArgs: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (err += String(d)));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out, err };
}
