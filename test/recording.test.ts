import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { EMBEDDED_DEFAULT } from '../server/config.js';
import type { PollEvent } from '../server/sources/source.js';
import { recordingServer } from './helpers/recording-server.js';
import { waitFor } from './helpers/upstreams.js';

describe('the embedded default', () => {
  it('records the in-process simulator (CSV matrix, flows, graph) and serves its latest state', async () => {
    const srv = await recordingServer({ ...EMBEDDED_DEFAULT, publish: { bind: '127.0.0.1:0' } });
    // Every poller has finished its first poll (sources start polling at once).
    await Promise.all(srv.sources.filter((s) => s.type !== 'push').map((s) => (s.health().polls > 0 ? undefined : waitFor<PollEvent>(s, 'poll'))));
    expect(srv.simulator?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const state = (await (await request(`${srv.url}/api/v1/state?glob=/fabric/**`)).body.json()) as { values: Record<string, unknown> };
    expect(Object.keys(state.values)).toHaveLength(64 * 8);
    expect(typeof state.values['/fabric/sw-063/temperature_c']).toBe('number');
    const health = (await (await request(`${srv.url}/api/v1/sources`)).body.json()) as { sources: Array<{ name: string; status: string }> };
    expect(health.sources.map((s) => [s.name, s.status])).toEqual([['fabric', 'ok'], ['flows', 'ok'], ['graph', 'ok'], ['push', 'starting']]);
    const paths = (await (await request(`${srv.url}/api/v1/paths?glob=/twin/*`)).body.json()) as { paths: string[] };
    expect(paths.paths).toEqual(['/twin/flows']);
    await srv.close();
  });
});
