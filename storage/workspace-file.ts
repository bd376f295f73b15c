/**
 * The workspace file's bytes (`workspace.json`: bookmarks and layouts of the web player,
 * server/workspace/store.ts keeps them): what is written, and whether a file reads back. Here
 * rather than in server/ so that `tapedeck verify` (storage/verify.ts) checks the file by the
 * very rule the server reads it by.
 *
 * The text is the workspace's JSON with its CRC32C (over that JSON's UTF-8 bytes, as 8 hex
 * digits) added as a last member, `"crc"`, and one newline: `{...,"crc":"0a1b2c3d"}\n`. A
 * file is read back only if the CRC32C holds and the file ends exactly so, so that every byte
 * is checked: a damaged byte inside a note or a layout is found rather than shown, and so is
 * one in the `"crc"` member's name (which read as a file written before the CRC32C, unchecked)
 * or in the last newline. A file without `"crc"` (written before it was added) is read as it
 * is, if its object holds exactly `version`, `bookmarks` and `layouts`, as those files did.
 */
import { crc32c } from './codec/crc.js';

export const WORKSPACE_FILE = 'workspace.json';
export const WORKSPACE_FORMAT_VERSION = 1;

export interface Bookmark {
  id: string;
  /** Epoch µs of the moment. */
  ts: number;
  /** Epoch µs of the end of a range, when the bookmark marks one. */
  end?: number;
  note: string;
  /** Epoch µs at which it was made (server clock). */
  createdTs: number;
  /** The player's URL state (its query string without `?`), to reopen the moment as it was shown. */
  url: string;
}

export interface Layout {
  name: string;
  /** Opaque JSON object: the player's panels (charts.getLayout()). */
  layout: Record<string, unknown>;
  updatedTs: number;
}

export interface WorkspaceFile {
  version: number;
  bookmarks: Bookmark[];
  layouts: Layout[];
}

/** The file's text for these bookmarks and layouts. */
export function workspaceText(bookmarks: Bookmark[], layouts: Iterable<Layout>): string {
  const data: WorkspaceFile = { version: WORKSPACE_FORMAT_VERSION, bookmarks, layouts: [...layouts] };
  const json = JSON.stringify(data);
  return `${json.slice(0, -1)},"crc":"${hex8(crc32c(json))}"}\n`;
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
const CRC_TAIL = /,"crc":"([0-9a-f]{8})"}\n$/;
/** The members of a file written before the CRC32C, and nothing else. */
const UNCHECKED_KEYS = ['bookmarks', 'layouts', 'version'].join();

/** The JSON the CRC32C covers, when the text carries one that holds; the text itself when it is a file written before; null when it fails. */
function checkedJson(text: string): string | null {
  const m = CRC_TAIL.exec(text);
  if (m !== null) {
    const json = `${text.slice(0, m.index)}}`;
    return hex8(crc32c(json)) === m[1] ? json : null;
  }
  try {
    // A "crc" member out of its place, or damaged in its name, or a tail not as written, is damage.
    const raw: unknown = JSON.parse(text);
    return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && Object.keys(raw).sort().join() === UNCHECKED_KEYS ? text : null;
  } catch {
    return null;
  }
}

/** The file's content when it reads back (CRC32C and every field checked), else null: damaged. */
export function parseWorkspace(text: string): WorkspaceFile | null {
  const json = checkedJson(text);
  if (json === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const o = raw as Partial<WorkspaceFile>;
  if (o.version !== WORKSPACE_FORMAT_VERSION || !Array.isArray(o.bookmarks) || !Array.isArray(o.layouts)) return null;
  const isInt = (x: unknown): x is number => Number.isSafeInteger(x);
  const bookmarkOk = (b: Partial<Bookmark>): boolean =>
    typeof b.id === 'string' && isInt(b.ts) && (b.end === undefined || isInt(b.end)) && typeof b.note === 'string' && isInt(b.createdTs) && typeof b.url === 'string';
  const layoutOk = (l: Partial<Layout>): boolean =>
    typeof l.name === 'string' && typeof l.layout === 'object' && l.layout !== null && !Array.isArray(l.layout) && isInt(l.updatedTs);
  if (!o.bookmarks.every((b) => typeof b === 'object' && b !== null && bookmarkOk(b))) return null;
  if (!o.layouts.every((l) => typeof l === 'object' && l !== null && layoutOk(l))) return null;
  return { version: WORKSPACE_FORMAT_VERSION, bookmarks: o.bookmarks, layouts: o.layouts };
}
