/**
 * The `tapedeck` command. Each subcommand lives in its own module and returns an exit
 * code; errors with a Tapedeck code are printed as `code: message`.
 */
import { isTapedeckError } from '../../protocol/errors.js';
import { terminalText } from './terminal-text.js';

/**
 * Each subcommand is imported when it runs, never before: `tapedeck --help` then loads
 * this file alone (the server, storage and their native addons take hundreds of ms).
 */
async function load(cmd: string): Promise<((argv: string[]) => Promise<number> | number) | undefined> {
  switch (cmd) {
    case 'inspect': return (await import('./inspect.js')).inspectCommand;
    case 'verify': return (await import('./verify.js')).verifyCommand;
    case 'reindex': return (await import('./reindex.js')).reindexCommand;
    case 'compact': return (await import('./compact.js')).compactCommand;
    case 'demo': return (await import('./demo.js')).demoCommand;
    case 'play': return (await import('./play.js')).playCommand;
    case 'serve': return (await import('./serve.js')).serveCommand;
    case 'simulate': return (await import('./simulate.js')).simulateCommand;
    case 'export': return (await import('./export.js')).exportCommand;
    case '--example': return (await import('./example.js')).exampleCommand;
    default: return undefined;
  }
}

const USAGE = `usage: tapedeck <command> [options]

commands:
  inspect <archive-dir> [--json] [--paths] [--glob G] [--at TIME] [--head N]
                         summary of an archive's files, blocks, batches and paths;
                         --at prints the state at TIME, --head the first N batches
  verify <archive-dir> [--json]
                         check every header (both commit slots), block (CRC32C,
                         framing, decoding, timestamp order) and the catalog (SQLite
                         integrity, row checksums, rows against the files), the
                         coverage journal, the workspace file and the per-series
                         sidecars; exits 1 and names file and offset of each problem
  reindex <archive-dir>  rebuild the catalog from the segment files
  compact <archive-dir> [--json]
                         with no server running: re-encode sealed files into larger
                         blocks (smaller files, same batches); skips damaged files,
                         files the put hook shipped, and files already compact
  play <url> [--start T] [--end T] [--pos P] [--speed S] [--filter G]...
       [--format json|msgpack] [--burst N]
                         terminal player: prints the state and batches as they play;
                         keys: space pause, n next, b burst, arrows step/seek,
                         0 beginning, +/- speed, t live, q quit
  demo [--dir DIR] [--minutes N]
                         record N minutes (default 30) of simulated fabric telemetry
                         into DIR (default ./data/demo), then inspect it
  serve [--config FILE] [--port N] [--archive DIR]
                         record the config's sources and serve queries, ingest and
                         playback until SIGINT/SIGTERM; without --config: archive in
                         ./data, the built-in simulator as sources, 127.0.0.1:8080,
                         and an archive directory still empty is first seeded with
                         10 minutes of simulated history; --port and --archive
                         override the publish port and the archive directory
  --example              print a complete config file with every field explained
  simulate [--port 9001] [--switches 64] [--interval 1s] [--fault-500-pct P]
           [--fault-slow-ms M]
                         serve a simulated fabric: CSV matrix at /counters, twin flow
                         and graph JSON at /ndt/get_detected_flows, /ndt/get_graph_data
  export [--archive DIR] [--from T] [--to T] [--glob G]... [--format ndjson|csv|parquet]
         --out FILE      write the history of the matching paths to FILE

TIME is RFC 3339 (2026-11-23T14:02:00Z) or an epoch number in s, ms or µs
(export also takes now and offsets such as -5m).

exit codes: 0 done (verify: clean); 1 verify or reindex found problems, or an
error was printed as "tapedeck: CODE: message" (TPD_INTERNAL: a bug in Tapedeck);
2 usage error. A damaged archive is never a crash: inspect and export index a
damaged catalog into memory and report what they skipped.
`;

/**
 * `--start -1h` as `--start=-1h`: node's parseArgs reads a value that starts with `-` as an
 * option and refuses it, yet offsets (`-1h`, `-10`) are what users type. No option here
 * is spelled `-<digit>`, so an option followed by `-<digit>` or `+<digit>` takes it.
 */
export function joinSignedValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (/^--[a-z][\w-]*$/.test(a) && next !== undefined && /^[-+]\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = joinSignedValues(argv);
  try {
    if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    }
    const command = await load(cmd);
    if (!command) {
      process.stderr.write(`tapedeck: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
    }
    return await command(rest);
  } catch (err) {
    if (err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_')) {
      process.stderr.write(`tapedeck: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    // Never a stack trace: one line a user can act on (TAPEDECK_DEBUG=1 adds the stack).
    const { code, message } = errorLine(err);
    process.stderr.write(`tapedeck: ${code}: ${terminalText(message)}\n`); // a message may quote recorded data
    if (process.env.TAPEDECK_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return 1;
  }
}

/** Errors of fetch (undici) that say the server cannot be reached, as opposed to a bug. */
const UNREACHABLE = /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|UND_ERR_\w+)$/;

/**
 * The code and message a failed command prints. Tapedeck's own errors and the client SDK's
 * (which carry the server's code: TPD_UNAUTHORIZED, TPD_NOT_FOUND, ...) keep their code; a
 * URL that does not parse is a bad argument and a server that cannot be reached is not ready
 * (fetch reports both as a TypeError whose cause says which); anything else is a bug.
 */
export function errorLine(err: unknown): { code: string; message: string } {
  if (isTapedeckError(err)) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  const message = err instanceof Error ? err.message : String(err);
  if (e && typeof e.code === 'string' && /^TPD_[A-Z_]+$/.test(e.code)) return { code: e.code, message };
  const cause = err instanceof TypeError ? e?.cause : undefined;
  if (cause?.code === 'ERR_INVALID_URL') return { code: 'TPD_BAD_ARGUMENT', message };
  // fetch refuses the ports browsers block (1, 25, 6000, ...) before connecting.
  if (cause?.message === 'bad port') return { code: 'TPD_BAD_ARGUMENT', message: 'the URL\'s port is one fetch refuses to connect to (a blocked port); use another' };
  if (typeof cause?.code === 'string' && UNREACHABLE.test(cause.code)) return { code: 'TPD_NOT_READY', message: `cannot reach the server: ${String(cause.message ?? cause.code)}` };
  return { code: 'TPD_INTERNAL', message };
}

// Run directly (node --import tsx clients/cli/main.ts ...), as tests and dev do.
if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2));
}
