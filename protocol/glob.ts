/**
 * Path globs, matched segment by segment (docs/globs.md). A glob and a path are split on
 * `/`; a `*` inside a segment matches any run of characters other than `/` (`sw-*`), a
 * segment that is exactly `**` matches zero or more whole segments (so a trailing `/**`
 * also matches the prefix itself), everything else is literal. A spec is a list of globs;
 * a path matches the spec when it matches any of them, so overlapping globs select a path
 * once.
 *
 * Why not a RegExp: a glob of repeated `**` compiled to `(?:.*\/)?` groups backtracks
 * exponentially on a path that does not match (a 39-character glob held the event loop for
 * 23 s). Here both levels use the greedy wildcard algorithm, which never backtracks more
 * than one step: `**` splits a glob into chunks of single-segment patterns that are found
 * leftmost in the path, and `*` splits a segment into pieces found leftmost in the
 * segment. The worst case is O(glob segments × path segments × segment length).
 *
 * Pure: used by the server, the storage cursor, the CLI and (bundled by
 * scripts/build-web.mjs) the web player.
 */
import { TapedeckError, type ErrorCode } from './errors.js';
import { PROTOCOL_LIMITS } from './limits.js';

export type PathMatcher = (path: string) => boolean;

/**
 * Informational code of the `warning` a query or a session gets when its globs match no
 * recorded path (the answer is the empty result, status 200). Not an error: nothing failed.
 */
export const NO_MATCH_WARNING_CODE: ErrorCode = 'TPD_NO_MATCH';

/** Characters kept for future glob syntax (classes, one-character wildcard, alternatives). */
const RESERVED = /[[\]?{}]/;

/** One segment of a glob: a literal, or pieces between `*` (at least two pieces). */
type SegmentPattern = string | readonly string[];

/** Segment patterns with no `**` between them. */
type Chunk = readonly SegmentPattern[];

export interface ParsedGlob {
  readonly glob: string;
  /**
   * The glob cut at each `**`: chunks[0] must match the start of the path and the last
   * chunk its end; a glob without `**` has one chunk that must match the whole path.
   */
  readonly chunks: readonly Chunk[];
  /** Fewest path segments that can match (a quick refusal). */
  readonly segmentsMin: number;
}

function bad(glob: string, why: string): TapedeckError {
  const shown = glob.length > 80 ? `${JSON.stringify(glob.slice(0, 80))}…` : JSON.stringify(glob);
  return new TapedeckError('TPD_BAD_GLOB', `glob ${shown} ${why}`, { glob: glob.slice(0, 200), reason: why });
}

/** UTF-8 length of `s`, stopping once past `max` (a hostile glob may be megabytes). */
function utf8BytesUpTo(s: string, max: number): number {
  let n = 0;
  for (let i = 0; i < s.length && n <= max; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4; // a surrogate pair is one 4-byte character
      i++;
    } else n += 3;
  }
  return n;
}

function segmentPattern(glob: string, seg: string): SegmentPattern {
  if (!seg.includes('*')) return seg;
  if (seg.includes('**')) throw bad(glob, `mixes "**" into the segment ${JSON.stringify(seg.slice(0, 40))}: "**" must be a whole segment`);
  return seg.split('*');
}

/** Checks a glob against the rules of docs/globs.md; throws TPD_BAD_GLOB naming it and why. */
export function parseGlob(glob: unknown): ParsedGlob {
  if (typeof glob !== 'string') throw bad(String(glob), `is a ${typeof glob}, not a string`);
  if (glob.length === 0) throw bad(glob, 'is empty');
  if (utf8BytesUpTo(glob, PROTOCOL_LIMITS.globBytesMax) > PROTOCOL_LIMITS.globBytesMax) {
    throw bad(glob, `is longer than globBytesMax (${PROTOCOL_LIMITS.globBytesMax} bytes)`);
  }
  if (!glob.startsWith('/')) throw bad(glob, 'does not start with "/"');
  if (glob.includes('\0')) throw bad(glob, 'holds NUL');
  const reserved = RESERVED.exec(glob);
  if (reserved) throw bad(glob, `uses ${JSON.stringify(reserved[0])}, reserved for future glob syntax (use "*" to cover it)`);
  const segs = glob.slice(1).split('/');
  if (segs.length > PROTOCOL_LIMITS.globSegmentsMax) {
    throw bad(glob, `has ${segs.length} segments, more than globSegmentsMax (${PROTOCOL_LIMITS.globSegmentsMax})`);
  }
  const chunks: Chunk[] = [];
  let chunk: SegmentPattern[] = [''];
  let segmentsMin = 1;
  for (const seg of segs) {
    if (seg === '**') {
      // `**/**` is `**`: consecutive ones collapse, so none adds work. (The first chunk
      // always holds the empty segment before the leading `/`.)
      if (chunk.length > 0) chunks.push(chunk);
      chunk = [];
      continue;
    }
    chunk.push(segmentPattern(glob, seg));
    segmentsMin++;
  }
  chunks.push(chunk);
  return { glob, chunks, segmentsMin };
}

/** Checks a spec (a list of globs) and each glob in it; throws TPD_BAD_GLOB. */
export function validateGlobs(globs: unknown): ParsedGlob[] {
  if (!Array.isArray(globs)) throw new TapedeckError('TPD_BAD_GLOB', `globs must be a list of strings, got ${typeof globs}`);
  if (globs.length > PROTOCOL_LIMITS.globsPerSpecMax) {
    throw new TapedeckError('TPD_BAD_GLOB', `${globs.length} globs, more than globsPerSpecMax (${PROTOCOL_LIMITS.globsPerSpecMax})`);
  }
  return globs.map(parseGlob);
}

/** `*`-wildcard match of one segment: pieces found leftmost, the last one anchored at the end. */
function segmentMatches(p: SegmentPattern, s: string): boolean {
  if (typeof p === 'string') return p === s;
  const first = p[0] as string;
  const last = p[p.length - 1] as string;
  if (s.length < first.length + last.length || !s.startsWith(first) || !s.endsWith(last)) return false;
  let at = first.length;
  const end = s.length - last.length;
  for (let i = 1; i < p.length - 1; i++) {
    const piece = p[i] as string;
    const found = s.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

function chunkMatchesAt(chunk: Chunk, segs: readonly string[], start: number): boolean {
  for (let i = 0; i < chunk.length; i++) {
    if (!segmentMatches(chunk[i] as SegmentPattern, segs[start + i] as string)) return false;
  }
  return true;
}

/** Whether the path, split on `/`, matches the parsed glob. */
export function matchSegments(g: ParsedGlob, segs: readonly string[]): boolean {
  const n = segs.length;
  const { chunks } = g;
  const head = chunks[0] as Chunk;
  if (chunks.length === 1) return n === head.length && chunkMatchesAt(head, segs, 0);
  if (n < g.segmentsMin) return false;
  const tail = chunks[chunks.length - 1] as Chunk;
  if (!chunkMatchesAt(head, segs, 0) || !chunkMatchesAt(tail, segs, n - tail.length)) return false;
  // Each chunk between two `**` is found leftmost after the previous one: any later fit
  // leaves less room for the rest, so the first fit is the one to take (no backtracking).
  let from = head.length;
  const to = n - tail.length;
  for (let c = 1; c < chunks.length - 1; c++) {
    const chunk = chunks[c] as Chunk;
    let at = from;
    while (at + chunk.length <= to && !chunkMatchesAt(chunk, segs, at)) at++;
    if (at + chunk.length > to) return false;
    from = at + chunk.length;
  }
  return true;
}

/** Whether `path` matches one glob (validated: throws TPD_BAD_GLOB). */
export function globMatches(glob: string, path: string): boolean {
  return matchSegments(parseGlob(glob), path.split('/'));
}

/**
 * The predicate of a spec; no globs (or `/**` among them) selects everything. Validates
 * every glob first (TPD_BAD_GLOB), so each caller refuses a malformed spec the same way.
 */
export function compileSpec(globs: readonly string[] | undefined): PathMatcher {
  if (!globs || globs.length === 0) return () => true;
  const parsed = validateGlobs(globs);
  if (globs.includes('/**')) return () => true;
  if (parsed.length === 1) {
    const g = parsed[0] as ParsedGlob;
    return (path) => matchSegments(g, path.split('/'));
  }
  return (path) => {
    const segs = path.split('/');
    return parsed.some((g) => matchSegments(g, segs));
  };
}

/** Whether the spec selects at least one of `paths` (an empty answer then gets a warning). */
export function specMatchesAny(match: PathMatcher, paths: Iterable<string>): boolean {
  for (const p of paths) if (match(p)) return true;
  return false;
}

/** The `warning` of an answer whose globs select no recorded path. */
export function noMatchWarning(globs: readonly string[]): { code: string; message: string } {
  const shown = globs.slice(0, 4).map((g) => JSON.stringify(g.slice(0, 80))).join(', ');
  return { code: NO_MATCH_WARNING_CODE, message: `no recorded path matches ${shown}${globs.length > 4 ? ` (+${globs.length - 4} more)` : ''}` };
}
