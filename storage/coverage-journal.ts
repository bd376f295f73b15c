/**
 * The coverage journal: `coverage.log` in the archive directory, one event a line, each
 * line `<crc32c of the JSON, 8 hex digits> <JSON>\n`, appended and fdatasync'd one event
 * at a time (events are rare: runs and source outages). It is part of the archive, not a
 * derived index: the segment files cannot say when the recorder was down.
 *
 * Reading checks every line's checksum and shape; a damaged line is skipped and reported
 * (`problems`), never believed; a last line without its newline is a torn append (a crash
 * during the write) and is ignored when it is the start of a line (taken when it is a whole
 * line that checks, reported when it is neither). `verify` reports the problems too.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isCoverageEvent, type CoverageEvent } from '../protocol/coverage.js';
import { crc32c } from './codec/crc.js';
import { STORAGE_LIMITS } from './limits.js';

export const COVERAGE_FILE = 'coverage.log';

export interface JournalProblem {
  line: number;
  message: string;
}

export interface JournalContents {
  events: CoverageEvent[];
  problems: JournalProblem[];
  /** True when the file's last line was cut short (a torn append). */
  torn: boolean;
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
const LINE = /^([0-9a-f]{8}) (.*)$/s;
/** What the start of a line can look like: up to 8 hex digits, or 8 and a space and JSON text (printable: no NUL, no control). */
const TORN_PREFIX = /^(?:[0-9a-f]{1,8}|[0-9a-f]{8} .*)$/s;
const tornPrefix = (s: string): boolean => TORN_PREFIX.test(s) && ![...s].some((c) => c.charCodeAt(0) < 0x20);

/**
 * Whether the last line, without its newline, starts with a whole line that checks: then it
 * is no torn append but an event, whole (taken) or with bytes after it where its newline
 * was (damage: reported).
 */
function holdsWholeLine(last: string): boolean {
  const m = LINE.exec(last);
  if (m === null) return false;
  const json = m[2] as string;
  for (let end = json.indexOf('}'); end >= 0; end = json.indexOf('}', end + 1)) {
    if (hex8(crc32c(json.slice(0, end + 1))) === m[1]) return true;
  }
  return false;
}

/** One event as its journal line (pure). */
export function encodeJournalLine(e: CoverageEvent): string {
  const json = JSON.stringify(e);
  return `${hex8(crc32c(json))} ${json}\n`;
}

/** The journal's text to events, checking each line (pure). */
export function decodeJournal(text: string): JournalContents {
  const out: JournalContents = { events: [], problems: [], torn: false };
  const lines = text.split('\n');
  const last = lines.pop() as string;
  if (last.length > 0) {
    out.torn = true;
    // A torn append leaves the start of a line: its checksum's hex digits, then JSON text.
    // Anything else there (zeros left by the file system, a damaged byte) is damage, and a
    // whole line that only lost its newline is an event like any other.
    if (!tornPrefix(last) || holdsWholeLine(last)) lines.push(last);
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const bad = (message: string): void => {
      out.problems.push({ line: i + 1, message });
    };
    const m = LINE.exec(line);
    if (!m) {
      bad('not a journal line');
      continue;
    }
    const json = m[2] as string;
    if (hex8(crc32c(json)) !== m[1]) {
      bad('checksum mismatch');
      continue;
    }
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      bad('not JSON');
      continue;
    }
    if (!isCoverageEvent(v)) {
      bad('not a coverage event');
      continue;
    }
    if (out.events.length >= STORAGE_LIMITS.coverageEventsMax) {
      // Keep the newest: drop the oldest half at once so this stays linear.
      out.events.splice(0, out.events.length >> 1);
    }
    out.events.push(v);
  }
  return out;
}

/** The journal of the archive in `dir`; one that cannot be read is a problem (line 0), not an error: the server starts. */
export async function readJournal(dir: string): Promise<JournalContents> {
  let text: string;
  try {
    text = await readFile(join(dir, COVERAGE_FILE), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { events: [], problems: [], torn: false };
    return { events: [], problems: [{ line: 0, message: `the journal cannot be read (${code ?? String(err)})` }], torn: false };
  }
  return decodeJournal(text);
}

/**
 * Appends events durably, one at a time, in call order. A torn last line left by a crash
 * is ended with a newline first, so the next event starts a line of its own.
 */
export class JournalWriter {
  private chain: Promise<void> = Promise.resolve();
  private needsNewline: boolean;

  constructor(private readonly dir: string, torn: boolean) {
    this.needsNewline = torn;
  }

  append(e: CoverageEvent): Promise<void> {
    const line = encodeJournalLine(e);
    const next = this.chain.then(async () => {
      const fh = await open(join(this.dir, COVERAGE_FILE), 'a');
      const before = (await fh.stat()).size;
      try {
        const bytes = Buffer.from((this.needsNewline ? '\n' : '') + line);
        // A short write (a full disk: the line's start fit the last page) is finished or
        // fails; never a line cut short that resolves, or that the next line goes on.
        for (let at = 0; at < bytes.length; ) {
          const { bytesWritten } = await fh.write(bytes, at, bytes.length - at);
          if (bytesWritten <= 0) throw new Error('coverage journal write made no progress');
          at += bytesWritten;
        }
        await fh.datasync();
        this.needsNewline = false;
      } catch (err) {
        // The journal as it was before this event: a failed append leaves nothing of it.
        await fh.truncate(before).catch(() => {
          this.needsNewline = true;
        });
        throw err;
      } finally {
        await fh.close();
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Resolves when every event appended so far is written (or failed). */
  settled(): Promise<void> {
    return this.chain;
  }
}
