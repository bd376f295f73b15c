/**
 * Who owns a path for push and poll sources (docs/cluster.md, "Ownership"): the shard whose
 * `cluster.globs` match it. Two shards' globs must not overlap, where "overlap" means that
 * some path matches both: computed exactly over the glob syntax of docs/globs.md (literal
 * segments, `*` inside a segment, `**` as zero or more segments), so `/a/*` and `/a/b/**`
 * overlap (`/a/b`), `/a/x-*` and `/a/*-y` overlap (`/a/x-y`), `/a/x-*` and `/a/y-*` do not.
 * Pure, except for the bounded path → owner cache.
 */
import { TapedeckError } from '../../protocol/errors.js';
import { compileSpec, parseGlob, type PathMatcher } from '../../protocol/glob.js';
import { SERVER_LIMITS } from '../limits.js';
import type { ShardInfo } from './directory.js';

type Seg = { kind: 'any' } | { kind: 'lit'; text: string } | { kind: 'star'; pieces: readonly string[] };

function segmentsOf(glob: string): Seg[] {
  parseGlob(glob);
  return glob.slice(1).split('/').map((s): Seg => {
    if (s === '**') return { kind: 'any' };
    if (s.includes('*')) return { kind: 'star', pieces: s.split('*') };
    return { kind: 'lit', text: s };
  });
}

/** True when `pieces` (a `*` pattern split on `*`) matches `text`: the greedy leftmost search. */
function starMatches(pieces: readonly string[], text: string): boolean {
  const first = pieces[0] as string;
  const last = pieces[pieces.length - 1] as string;
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const k = text.indexOf(pieces[i] as string, at);
    if (k < 0 || k + (pieces[i] as string).length > end) return false;
    at = k + (pieces[i] as string).length;
  }
  return true;
}

/**
 * Two single-segment patterns share a segment. Two `*` patterns do exactly when their
 * first pieces are prefixes of one another and their last pieces suffixes of one another:
 * the longer prefix, every middle piece of both, then the longer suffix is then such a
 * segment.
 */
function segmentsMeet(a: Seg, b: Seg): boolean {
  if (a.kind === 'lit' && b.kind === 'lit') return a.text === b.text;
  if (a.kind === 'lit' && b.kind === 'star') return starMatches(b.pieces, a.text);
  if (a.kind === 'star' && b.kind === 'lit') return starMatches(a.pieces, b.text);
  if (a.kind !== 'star' || b.kind !== 'star') return true;
  const [p, q] = [a.pieces[0] as string, b.pieces[0] as string];
  const [s, t] = [a.pieces[a.pieces.length - 1] as string, b.pieces[b.pieces.length - 1] as string];
  return (p.startsWith(q) || q.startsWith(p)) && (s.endsWith(t) || t.endsWith(s));
}

/** True when some path matches both globs (both valid by docs/globs.md; throws TPD_BAD_GLOB otherwise). */
export function globsOverlap(a: string, b: string): boolean {
  const x = segmentsOf(a);
  const y = segmentsOf(b);
  const memo = new Map<number, boolean>();
  const meet = (i: number, j: number): boolean => {
    const key = i * (y.length + 1) + j;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let r: boolean;
    const u = x[i];
    const v = y[j];
    if (u === undefined && v === undefined) r = true;
    else if (u?.kind === 'any') r = meet(i + 1, j) || (v !== undefined && meet(i, j + 1));
    else if (v?.kind === 'any') r = meet(i, j + 1) || (u !== undefined && meet(i + 1, j));
    else r = u !== undefined && v !== undefined && segmentsMeet(u, v) && meet(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return meet(0, 0);
}

/** The first pair of overlapping globs between two lists, or undefined. */
function firstOverlap(mine: readonly string[], theirs: readonly string[]): [string, string] | undefined {
  for (const a of mine) for (const b of theirs) if (globsOverlap(a, b)) return [a, b];
  return undefined;
}

/** The TPD_BAD_CONFIG naming both shards when `self`'s globs overlap another registered shard's. */
export function overlapError(self: string, globs: readonly string[], others: readonly Pick<ShardInfo, 'id' | 'globs'>[]): TapedeckError | undefined {
  for (const o of others) {
    if (o.id === self) continue;
    const pair = firstOverlap(globs, o.globs);
    if (pair) {
      return new TapedeckError('TPD_BAD_CONFIG', `cluster.globs: shard ${self}'s ${JSON.stringify(pair[0])} overlaps shard ${o.id}'s ${JSON.stringify(pair[1])}: a path would have two owners (docs/cluster.md, "Ownership")`, { shard: self, other: o.id, globs: pair });
    }
  }
  return undefined;
}

export interface Owner {
  id: string;
  url: string;
}

/**
 * Path → owner over the last known membership. `self` owns what its own globs match;
 * another shard what its globs match (live or not: ownership is configuration, not
 * liveness); a path no shard owns has no owner (the receiving shard records it, docs).
 */
export class Ownership {
  readonly self: string;
  private readonly mine: PathMatcher;
  private readonly ownsAny: boolean;
  private others: Array<{ owner: Owner; match: PathMatcher }> = [];
  private othersKey = '';
  private readonly cache = new Map<string, Owner | null>();

  constructor(self: string, globs: readonly string[]) {
    this.self = self;
    this.ownsAny = globs.length > 0;
    this.mine = compileSpec(globs.length > 0 ? globs : ['/']);
  }

  /** Takes a new membership snapshot; the cache is kept while the other shards' globs and URLs stay the same. */
  update(shards: readonly ShardInfo[]): void {
    const others = shards.filter((s) => s.id !== this.self && s.globs.length > 0);
    const key = JSON.stringify(others.map((s) => [s.id, s.url, s.globs]));
    if (key === this.othersKey) return;
    this.othersKey = key;
    this.others = others.map((s) => ({ owner: { id: s.id, url: s.url }, match: compileSpec(s.globs) }));
    this.cache.clear();
  }

  /** True when this shard's own globs match `path`. */
  owns(path: string): boolean {
    return this.ownsAny && this.mine(path);
  }

  /** The other shard owning `path`, or null (this shard owns it, or nobody does). */
  foreignOwner(path: string): Owner | null {
    if (this.others.length === 0 || this.owns(path)) return null;
    let o = this.cache.get(path);
    if (o === undefined) {
      o = this.others.find((x) => x.match(path))?.owner ?? null;
      if (this.cache.size >= SERVER_LIMITS.clusterOwnerCachePathsMax) this.cache.clear();
      this.cache.set(path, o);
    }
    return o;
  }

  /**
   * Refuses a request with a path another shard owns: TPD_NOT_OWNER (421) naming the first
   * such path, its owner and its URL, and every owner met (nothing of the request is recorded).
   */
  check(paths: Iterable<string>): void {
    let first: { path: string; owner: Owner } | undefined;
    const owners = new Map<string, Owner>();
    for (const p of paths) {
      const o = this.foreignOwner(p);
      if (o === null) continue;
      first ??= { path: p, owner: o };
      owners.set(o.id, o);
    }
    if (!first) return;
    const more = owners.size > 1 ? ` (and paths of ${owners.size - 1} other shard(s))` : '';
    throw new TapedeckError('TPD_NOT_OWNER', `${first.path} is owned by shard ${first.owner.id} at ${first.owner.url}${more}; push it there. Nothing of this request was recorded`, {
      path: first.path,
      owner: first.owner.id,
      owner_url: first.owner.url,
      owners: [...owners.values()].map((o) => ({ shard: o.id, url: o.url })),
    });
  }
}
