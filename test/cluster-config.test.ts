/**
 * The `cluster` config section (docs/cluster.md): defaults, and the problems it names by
 * key: bad globs, a too-short lease, a record spec that would drop the Kafka batch markers.
 */
import { describe, expect, it } from 'vitest';
import { isTapedeckError } from '../protocol/errors.js';
import { resolveConfig } from '../server/config.js';

const base = { archive_directory: '/tmp/x', cluster: { name: 'fab', shard: 's1', redis: 'redis://127.0.0.1:6379' } };

function problems(doc: unknown): string[] {
  try {
    resolveConfig(doc);
  } catch (err) {
    if (isTapedeckError(err, 'TPD_BAD_CONFIG')) return (err.details?.problems as string[] | undefined) ?? [err.message];
    throw err;
  }
  return [];
}

describe('cluster config', () => {
  it('resolves with its defaults', () => {
    expect(resolveConfig(base).cluster).toEqual({ name: 'fab', shard: 's1', advertiseUrl: null, redisUrl: 'redis://127.0.0.1:6379', globs: [], leaseTtlMs: 5000, inDoubtMaxWaitMs: 0, token: null });
    expect(resolveConfig({ archive_directory: '/tmp/x' }).cluster).toBeNull();
  });

  it('names each bad key', () => {
    const p = problems({ ...base, cluster: { ...base.cluster, globs: ['/ok/**', 'no-slash', '/a/**b'], lease_ttl: '100ms' } });
    expect(p.join('\n')).toMatch(/cluster\.globs\[1\]: .*TPD_BAD_GLOB/);
    expect(p.join('\n')).toMatch(/cluster\.globs\[2\]: .*TPD_BAD_GLOB/);
    expect(p.join('\n')).toMatch(/cluster\.lease_ttl: must be at least 200ms/);
    expect(problems({ ...base, cluster: { ...base.cluster, advertise_url: 'http://h:1/path' } }).join('\n')).toMatch(/advertise_url/);
    expect(problems({ ...base, cluster: { ...base.cluster, shard: 'a b' } }).join('\n')).toMatch(/shard/);
    expect(problems({ ...base, cluster: { ...base.cluster, extra: 1 } }).join('\n')).toMatch(/extra/);
  });

  it('refuses a record spec that drops the Kafka batch markers, and takes one that keeps them', () => {
    const kafka = { name: 'k', type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['t1'] };
    expect(problems({ ...base, record: { spec: ['/kafka/**'] }, sources: [kafka] }).join('\n')).toMatch(/sources\[0\] \(k\): record\.spec must keep \/tapedeck\/kafka\/k\/t1\/0/);
    expect(problems({ ...base, record: { spec: ['/kafka/**', '/tapedeck/kafka/**'] }, sources: [kafka] })).toEqual([]);
    // Without a cluster there are no markers to keep.
    expect(problems({ archive_directory: '/tmp/x', record: { spec: ['/kafka/**'] }, sources: [kafka] })).toEqual([]);
  });
});
