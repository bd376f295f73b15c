/**
 * `tapedeck play <url>`: a terminal player. Creates a session, prints the state and every
 * batch as it plays, and on a terminal takes keys like a media player:
 *
 *   space  play / pause          right / left   one batch forward / back (a seek)
 *   n  play-next (one batch, then pause)          b  burst: the next --burst N batches
 *   up / down  +1 / -1 minute    + / -          speed x2 / ÷2
 *   u  unlimited speed           t  live (tail) l  loop on / off
 *   0 / Home  beginning          q  quit (deletes the session)
 *
 * Steps and seeks relative to the playhead go to the server in the time grammar
 * (`pos+1m`, `+1`), which resolves them against the position it showed: no client clock.
 *
 * Without a terminal it just prints until the session ends (or SIGINT).
 */
import { parseArgs } from 'node:util';
import { TapedeckClient, type ControlsView, type StreamFrame } from '../client/index.js';
import { formatTs } from '../../protocol/time.js';
import { valueToJsonText } from '../../protocol/value-json.js';
import { parseBurst, SPEED_MAX, SPEED_MIN } from '../../protocol/controls.js';
import { TapedeckError } from '../../protocol/errors.js';
import { clipText, terminalText } from './terminal-text.js';

/** N of the `b` key when --burst is not given. */
const BURST_DEFAULT = 10;

function help(burst: number): string {
  return `keys: space play/pause  n next  b burst ${burst}  ←/→ step  ↑/↓ ±1 min  +/- speed  u unlimited  t live  l loop  0 beginning  q quit`;
}

export async function playCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      start: { type: 'string' },
      end: { type: 'string' },
      pos: { type: 'string' },
      speed: { type: 'string', default: '1' },
      filter: { type: 'string', multiple: true },
      format: { type: 'string', default: 'msgpack' },
      token: { type: 'string' },
      'max-updates': { type: 'string', default: '8' },
      burst: { type: 'string', default: String(BURST_DEFAULT) },
    },
  });
  const url = positionals[0];
  if (!url) throw new TapedeckError('TPD_BAD_ARGUMENT', 'play needs the server URL, e.g. http://127.0.0.1:8080');
  if (values.format !== 'json' && values.format !== 'msgpack') throw new TapedeckError('TPD_BAD_ARGUMENT', '--format is json or msgpack');
  const maxUpdates = Number(values['max-updates']);
  const burstN = burstOption(values.burst);
  const client = new TapedeckClient(url, values.token ? { token: values.token } : {});
  const session = await client.createSession({
    state: 'play',
    speed: values.speed,
    ...(values.start !== undefined ? { start: values.start } : {}),
    ...(values.end !== undefined ? { end: values.end } : {}),
    ...(values.pos !== undefined ? { pos: values.pos } : {}),
    ...(values.filter ? { filter: values.filter } : {}),
  });
  const stream = client.stream(session.id, { format: values.format });
  await stream.ready();
  const out = process.stdout;
  const tty = process.stdin.isTTY === true && out.isTTY === true;
  let controls: ControlsView = session.controls;
  let quitting = false;

  const quit = async (): Promise<void> => {
    if (quitting) return;
    quitting = true;
    stream.close();
    await client.deleteSession(session.id).catch(() => undefined);
  };
  const onKey = (key: string): void => {
    switch (key) {
      case ' ':
        stream.control({ state: controls.state === 'pause' ? 'play' : 'pause' });
        break;
      case '\u001b[C':
        stream.control({ pos: '+1' });
        break;
      case '\u001b[D':
        stream.control({ pos: '-1' });
        break;
      case 'n':
        stream.playNext();
        break;
      case 'b':
        stream.burst(burstN);
        break;
      case '\u001b[A':
        stream.control({ pos: 'pos+1m' });
        break;
      case '\u001b[B':
        stream.control({ pos: 'pos-1m' });
        break;
      case '+':
      case '=':
        stream.control({ speed: controls.speed === 'unlimited' ? SPEED_MAX : Math.min(SPEED_MAX, controls.speed * 2) });
        break;
      case '-':
        stream.control({ speed: controls.speed === 'unlimited' ? SPEED_MAX : Math.max(SPEED_MIN, controls.speed / 2) });
        break;
      case 'u':
        stream.control({ speed: 'unlimited' });
        break;
      case 't':
        stream.control({ state: 'tail' });
        break;
      case 'l':
        stream.control({ loop: !controls.loop });
        break;
      case '0':
      case '\u001b[H':
        stream.control({ pos: 'beginning' });
        break;
      case 'q':
      case '\u0003':
        void quit();
        break;
    }
  };
  const onKeys = (chunk: string): void => {
    for (const k of splitKeys(chunk)) onKey(k);
  };
  if (tty) {
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.setEncoding('utf8');
    // Held keys arrive several to a chunk: split it into keys (escape sequences whole).
    process.stdin.on('data', onKeys);
    out.write(help(burstN) + '\n');
  }
  const onSignal = (): void => void quit();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const width = tty ? (out.columns ?? 120) : Infinity;
  const clip = (s: string): string => clipText(s, width);
  let code = 0;
  try {
    for await (const f of stream) {
      const line = render(f, maxUpdates);
      if (f.type === 'controls') controls = f.controls;
      if (line) out.write(clip(terminalText(line)) + '\n'); // paths, strings and messages are recorded data
      if (f.type === 'error' && f.code === 'TPD_SESSION_NOT_FOUND') code = 1;
      if (f.type === 'end' && !tty) break;
    }
  } finally {
    if (tty) {
      process.stdin.setRawMode(false);
      process.stdin.pause();
      process.stdin.off('data', onKeys);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await quit();
  }
  return code;
}

/** --burst, read by the parser of the `burst` control (the same bounds), as a CLI error. */
function burstOption(v: string): number {
  try {
    return parseBurst(v);
  } catch (err) {
    throw new TapedeckError('TPD_BAD_ARGUMENT', `--${(err as Error).message}`);
  }
}

/** Splits what a terminal sent in one read into keys: `ESC [ X` sequences stay whole. */
export function splitKeys(chunk: string): string[] {
  const keys: string[] = [];
  for (let i = 0; i < chunk.length; ) {
    const n = chunk.startsWith('\u001b[', i) && i + 2 < chunk.length ? 3 : 1;
    keys.push(chunk.slice(i, i + n));
    i += n;
  }
  return keys;
}

export function render(f: StreamFrame, maxUpdates: number): string | undefined {
  switch (f.type) {
    case 'state': {
      const entries = Object.entries(f.values);
      const set = entries.filter(([, v]) => v !== null).length;
      const shown = entries.slice(0, maxUpdates).map(([p, v]) => `${p}=${valueToJsonText(v)}`).join(' ');
      return `== state at ${f.ts === null ? 'beginning' : formatTs(f.ts)}: ${entries.length} paths (${set} with values) ${shown}${entries.length > maxUpdates ? ' …' : ''}`;
    }
    case 'batch': {
      const shown = f.updates.slice(0, maxUpdates).map(([p, v]) => `${p}=${valueToJsonText(v)}`).join(' ');
      return `${formatTs(f.ts)}  ${shown}${f.updates.length > maxUpdates ? ` … (+${f.updates.length - maxUpdates})` : ''}`;
    }
    case 'controls': {
      const c = f.controls;
      return `-- ${c.state} ${c.speed === 'unlimited' ? 'unlimited' : `${c.speed}x`}${c.loop ? ' loop' : ''} at ${c.pos ?? 'beginning'} [${c.start} .. ${c.end}]`;
    }
    case 'end':
      return `== end (${f.reason})`;
    case 'error':
      return `!! ${f.code}: ${f.message}`;
    case 'info':
      return `.. ${f.message}`;
    case 'coverage': {
      // Where nothing was recorded: a replay reads the silence as a gap, not as a calm network.
      const items = [
        ...f.gaps.map((g) => `${g.reason} ${formatTs(g.startUs)} .. ${g.endUs === null ? 'now' : formatTs(g.endUs)}`),
        ...f.outages.map((o) => `${o.source} down ${formatTs(o.startUs)} .. ${o.endUs === null ? 'now' : formatTs(o.endUs)}`),
      ];
      return items.length === 0 ? undefined : `.. not recorded: ${items.slice(0, maxUpdates).join('; ')}${items.length > maxUpdates || f.truncated ? ' …' : ''}`;
    }
    case 'gap': {
      // Archive files gone under the session (docs/playback.md "Gone files"): the server
      // plays on from the state at toUs; the batches in between are lost, not merely quiet.
      const n = f.files.length;
      const files = `${f.files.slice(0, maxUpdates).join(', ')}${n > maxUpdates ? ' …' : ''}`;
      return `!! gap: data from ${f.fromUs === null ? 'the beginning' : formatTs(f.fromUs)} to ${formatTs(f.toUs)} is unavailable (${n} ${n === 1 ? 'file' : 'files'}: ${files}); playing on`;
    }
    case 'reconnected':
      return `.. reconnected (attempt ${f.attempt})`;
  }
}
