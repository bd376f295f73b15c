/**
 * Merged reads across shards that require tokens (docs/cluster.md, "Merged reads"): the
 * merging node presents `cluster.token` to every shard. Without it each shard answers 401,
 * which a merged answer must show as missing shards, never as an empty success.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/server.js';
import { splitWorkload } from './helpers/merge-cluster.js';
import { StaticDirectory } from '../server/cluster/static-directory.js';
import type { TokenConfig } from '../server/ops/auth.js';

const TOKENS: TokenConfig[] = [{ name: 'reader', token: 'shard-read-secret', scopes: ['read'] }];
const servers: TestServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function shards(): Promise<{ all: string[]; list: Array<{ id: string; url: string }> }> {
  const { parts, all } = splitWorkload(7, 20, 2);
  const list: Array<{ id: string; url: string }> = [];
  for (const [i, part] of parts.entries()) {
    const s = await startServer(part, { tokens: TOKENS });
    servers.push(s);
    list.push({ id: `s${i}`, url: s.url });
  }
  const paths = [...new Set(all.flatMap((b) => b.updates.map(([p]) => p)))].sort();
  return { all: paths, list };
}

describe('merged reads over shards that require tokens', () => {
  it('reach every shard with the node\'s token', async () => {
    const { all, list } = await shards();
    const front = await startServer([], { directory: new StaticDirectory('front', list, 'shard-read-secret') });
    servers.push(front);
    const res = await fetch(`${front.url}/api/v1/paths?glob=/**`);
    expect(res.status).toBe(200);
    expect(res.headers.get('tapedeck-partial')).toBeNull();
    const body = (await res.json()) as { paths: string[]; partial?: unknown };
    expect(body.partial).toBeUndefined();
    expect(body.paths).toEqual(all);
  });

  it('ask token-protected shards when they last updated a path they share, with the node\'s token', async () => {
    const T = 1_760_000_000_000_000;
    const a = await startServer([{ ts: T, updates: [['/moved', 'old']] }, { ts: T + 9, updates: [['/a', 1]] }], { tokens: TOKENS });
    const b = await startServer([{ ts: T + 5, updates: [['/moved', 'new']] }], { tokens: TOKENS });
    servers.push(a, b);
    const front = await startServer([], { directory: new StaticDirectory('front', [{ id: 'a', url: a.url }, { id: 'b', url: b.url }], 'shard-read-secret') });
    servers.push(front);
    const res = await fetch(`${front.url}/api/v1/state`);
    expect(res.headers.get('tapedeck-partial')).toBeNull();
    // a's answer is newer (T+9), but b updated /moved last (T+5 > T).
    expect(((await res.json()) as { values: object }).values).toEqual({ '/a': 1, '/moved': 'new' });
  });

  it('name every shard missing when the node has no token, and never answer an empty success', async () => {
    const { list } = await shards();
    const front = await startServer([], { directory: new StaticDirectory('front', list) });
    servers.push(front);
    const res = await fetch(`${front.url}/api/v1/paths?glob=/**`);
    const body = (await res.json()) as { paths?: string[]; partial?: { missing: Array<{ shard: string }> }; error?: { code: string } };
    if (res.status === 200) {
      expect(body.partial?.missing.map((m) => m.shard).sort()).toEqual(['s0', 's1']);
    } else {
      expect(res.status).toBe(503);
      expect(body.error?.code).toBe('TPD_CLUSTER_UNAVAILABLE');
    }
  });
});
