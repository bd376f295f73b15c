/**
 * Path globs: `*` matches one path level (no `/`), `**` matches any number of levels
 * (including none), everything else is literal. A spec is a list of globs; a path matches
 * the spec when it matches any of them, so overlapping globs select a path once.
 */
export type PathMatcher = (path: string) => boolean;

const cache = new Map<string, RegExp>();
const CACHE_MAX = 1024;

export function globToRegExp(glob: string): RegExp {
  const hit = cache.get(glob);
  if (hit) return hit;
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        // `/**/` and a trailing `/**` also match zero levels.
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '/' && glob.slice(i, i + 3) === '/**' && i + 3 === glob.length) {
      re += '(?:/.*)?';
      i += 2;
    } else {
      re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  const out = new RegExp(re + '$');
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(glob, out);
  return out;
}

export function compileSpec(globs: readonly string[] | undefined): PathMatcher {
  if (!globs || globs.length === 0 || globs.includes('/**')) return () => true;
  const res = globs.map(globToRegExp);
  return (path) => res.some((r) => r.test(path));
}
