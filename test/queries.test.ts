import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { formatTs } from '../protocol/time.js';
import { recordingServer } from './helpers/recording-server.js';
import { tmpDir } from './helpers/tmp.js';
import { tapedeckArgs } from './helpers/built.js';

const run = promisify(execFile);
const T0 = 1_763_000_000; // epoch seconds

async function get(url: string): Promise<{ status: number; type: string; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text() };
}

/** 10 batches, one a second from T0: /q/a every batch, /q/b on even ones, /r/c on the first, a string with a comma on the last. */
function lines(): string {
  const out: string[] = [];
  for (let i = 0; i < 10; i++) {
    const updates: Record<string, unknown> = { '/q/a': i + 0.5 };
    if (i % 2 === 0) updates['/q/b'] = i;
    if (i === 0) updates['/r/c'] = { deep: [1, 2] };
    if (i === 9) updates['/q/s'] = 'x, "y"';
    out.push(JSON.stringify({ ts: T0 + i, updates }));
  }
  return out.join('\n');
}

describe('queries', () => {
  it('lists paths, the state now and at a time, and history as NDJSON and CSV; export writes the same', async () => {
    const srv = await recordingServer();
    const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines() });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    await srv.recorder!.flush();
    const u = srv.url;

    expect(JSON.parse((await get(`${u}/api/v1/paths?glob=/q/*`)).text)).toEqual({ paths: ['/q/a', '/q/b', '/q/s'], count: 3, truncated: false });
    expect(JSON.parse((await get(`${u}/api/v1/paths?glob=/r/**&glob=/q/b`)).text).paths).toEqual(['/q/b', '/r/c']);

    const now = JSON.parse((await get(`${u}/api/v1/state?glob=/q/*`)).text);
    expect(now).toEqual({ ts: (T0 + 9) * 1e6, time: formatTs((T0 + 9) * 1e6), horizon: (T0 + 9) * 1e6, pending: false, values: { '/q/a': 9.5, '/q/b': 8, '/q/s': 'x, "y"' } });
    const at = JSON.parse((await get(`${u}/api/v1/state?at=${T0 + 3}&glob=/q/**&glob=/r/*`)).text);
    expect(at.values).toEqual({ '/q/a': 3.5, '/q/b': 2, '/r/c': { deep: [1, 2] } });
    const iso = JSON.parse((await get(`${u}/api/v1/state?at=${encodeURIComponent(formatTs((T0 + 4) * 1e6 - 1))}`)).text);
    expect(iso.values['/q/a']).toBe(3.5);

    const nd = await get(`${u}/api/v1/history?glob=/q/b&from=${T0 + 2}&to=${T0 + 6}`);
    expect(nd.status).toBe(200);
    expect(nd.type).toMatch(/application\/x-ndjson/);
    expect(nd.text).toBe([2, 4, 6].map((i) => `{"ts":${(T0 + i) * 1e6},"time":"${formatTs((T0 + i) * 1e6)}","updates":{"/q/b":${i}}}\n`).join(''));

    const csv = await get(`${u}/api/v1/history?glob=/q/**&from=${T0 + 8}&format=csv`);
    expect(csv.type).toMatch(/text\/csv/);
    const t8 = (T0 + 8) * 1e6;
    const t9 = (T0 + 9) * 1e6;
    expect(csv.text).toBe([
      'ts,time,path,value',
      `${t8},${formatTs(t8)},/q/a,8.5`,
      `${t8},${formatTs(t8)},/q/b,8`,
      `${t9},${formatTs(t9)},/q/a,9.5`,
      `${t9},${formatTs(t9)},/q/s,"x, ""y"""`,
      '',
    ].join('\n'));

    const bad = await get(`${u}/api/v1/state?at=yesterday-ish`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.code).toBe('TPD_BAD_ARGUMENT');
    const backwards = await get(`${u}/api/v1/history?from=${T0 + 5}&to=${T0 + 1}`);
    expect(backwards.status).toBe(400);
    expect(JSON.parse(backwards.text).error).toMatchObject({ code: 'TPD_BAD_ARGUMENT', message: expect.stringMatching(/before "from"/) });
    const unknown = await get(`${u}/api/v1/history?form=csv`);
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.text).error.code).toBe('TPD_BAD_REQUEST');
    await srv.close();

    const out = join(await tmpDir(), 'q.csv');
    const ex = await run(process.execPath, [...tapedeckArgs(), 'export', '--archive', srv.dir, '--glob', '/q/**', '--from', String(T0 + 8), '--format', 'csv', '--out', out]);
    expect(ex.stderr).toBe(`exported 2 batches to ${out}\nits SHA-256 is in ${out}.sha256\n`); // no progress bar without a terminal
    expect(await readFile(out, 'utf8')).toBe(csv.text);
    // On a terminal (a pseudo-terminal from script(1)), a progress bar is drawn.
    const cmd = [process.execPath, ...tapedeckArgs(), 'export', '--archive', srv.dir, '--out', `${out}.ndjson`].map((a) => `'${a}'`).join(' ');
    const tty = await run('script', ['-qec', cmd, '/dev/null']);
    expect(tty.stdout).toMatch(/\[#{30}\] 100% {2}10 batches/);
  });

  it('latest state by glob sees a path recorded after the glob was first asked for, and every newer value', async () => {
    const srv = await recordingServer();
    const push = async (updates: Record<string, unknown>): Promise<void> => {
      const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ updates }) });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    };
    await push({ '/n/a': 1, '/m/z': 0 });
    expect(JSON.parse((await get(`${srv.url}/api/v1/state?glob=/n/*`)).text).values).toEqual({ '/n/a': 1 });
    await push({ '/n/b': 2, '/n/a': 3 });
    expect(JSON.parse((await get(`${srv.url}/api/v1/state?glob=/n/*`)).text).values).toEqual({ '/n/a': 3, '/n/b': 2 });
    // Answers are kept rendered between batches: a changed value (no new path) and a changed
    // time must still show, for a glob list and for everything.
    const before = JSON.parse((await get(`${srv.url}/api/v1/state`)).text) as { ts: number; values: Record<string, unknown> };
    await push({ '/n/b': 'two' });
    const after = JSON.parse((await get(`${srv.url}/api/v1/state`)).text) as { ts: number; values: Record<string, unknown> };
    expect(after.values).toEqual({ ...before.values, '/n/b': 'two' });
    expect(after.ts).toBeGreaterThan(before.ts);
    expect(JSON.parse((await get(`${srv.url}/api/v1/state?glob=/n/*`)).text).values).toEqual({ '/n/a': 3, '/n/b': 'two' });
    await srv.close();
  });

  it('streams a long history in chunks, every batch once', async () => {
    const srv = await recordingServer();
    const n = 20_000;
    const body: string[] = [];
    for (let i = 0; i < n; i++) body.push(`{"ts":${(T0 * 1e6) + i},"updates":{"/h/x":${i},"/h/y":"${'v'.repeat(40)}"}}`);
    const res = await request(`${srv.url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: body.join('\n') });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    await srv.recorder!.flush();
    const h = await request(`${srv.url}/api/v1/history?glob=/h/x`);
    let chunks = 0;
    let lineCount = 0;
    let last = '';
    for await (const c of h.body) {
      chunks++;
      const text = last + String(c);
      const parts = text.split('\n');
      last = parts.pop() as string;
      lineCount += parts.length;
    }
    expect(lineCount).toBe(n);
    expect(chunks).toBeGreaterThan(5); // arrived in pieces, not as one body
    await srv.close();
  });
});
