import { readArchive as readBack } from './helpers/replay.js';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { upstream } from './helpers/upstreams.js';
import { tmpDir } from './helpers/tmp.js';
import { tapedeckArgs } from './helpers/built.js';

const SNAPSHOTS = 5;
const BODIES = 20;
const LINES = 50;


describe('graceful shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} records what was received, flushes, and exits 0 (no timed flush in between)`, async () => {
      // An upstream serving SNAPSHOTS distinct matrices, then hanging: once its request
      // SNAPSHOTS + 1 arrives, the poller has handed every served matrix to the recorder.
      let allHandled!: () => void;
      const handled = new Promise<void>((resolve) => (allHandled = resolve));
      const up = await upstream((n) => {
        if (n >= SNAPSHOTS) {
          allHandled();
          return { hang: true };
        }
        return { headers: { etag: `"${n}"` }, body: `id,v\nsw,${n}\n` };
      });
      const dir = await tmpDir();
      const cfg = join(dir, 'cfg.json');
      await writeFile(cfg, JSON.stringify({
        archive_directory: join(dir, 'archive'),
        // No flush timer and a huge page budget: only the shutdown flush commits anything.
        record: { spec: ['/**'], flush_interval: '0', flush_frequency: 65534 },
        publish: { bind: '127.0.0.1:0' },
        sources: [
          { name: 'up', type: 'csv-matrix', url: up.url, interval: '5ms', timeout: '30s' },
          { name: 'push', type: 'push' },
        ],
      }));
      const child = spawn(process.execPath, tapedeckArgs('serve', '--config', cfg), { stdio: ['ignore', 'pipe', 'pipe'] });
      onTestFinished(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += String(d)));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const logs: Array<Record<string, unknown>> = [];
      const listening = new Promise<string>((resolve) => {
        createInterface({ input: child.stdout }).on('line', (l) => {
          const j = JSON.parse(l) as Record<string, unknown>;
          logs.push(j);
          if (j.msg === 'listening') resolve(j.url as string);
        });
      });
      const url = await listening;
      for (let b = 0; b < BODIES; b++) {
        const lines: string[] = [];
        for (let i = 0; i < LINES; i++) lines.push(JSON.stringify({ updates: { [`/push/k${i % 7}`]: b * LINES + i } }));
        const res = await request(`${url}/api/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
        expect(res.statusCode).toBe(200);
        await res.body.dump();
      }
      await handled;
      // A playback session following live data: shutdown ends it with an `end` frame.
      const created = await request(`${url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'tail' }) });
      expect(created.statusCode).toBe(201);
      const { id } = (await created.body.json()) as { id: string };
      const ws = new WebSocket(`${url.replace('http', 'ws')}/api/v1/sessions/${id}/stream`);
      const frames: Array<{ type: string; reason?: string }> = [];
      ws.on('message', (d: Buffer) => frames.push(JSON.parse(String(d)) as { type: string; reason?: string }));
      const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      await vi.waitFor(() => expect(frames.some((f) => f.type === 'state')).toBe(true));
      child.kill(signal);
      expect(await exited, stderr).toBe(0);
      expect(await wsClosed).toBe(1000);
      expect(frames.at(-1)).toEqual({ type: 'end', reason: 'closed' });
      await up.close();
      expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['signal received', 'shutting down', 'stopped']));

      const got = await readBack(join(dir, 'archive'));
      const pushed = got.filter((b) => b.updates[0]?.[0].startsWith('/push/')).map((b) => b.updates[0]?.[1]);
      expect(pushed).toEqual(Array.from({ length: BODIES * LINES }, (_, i) => i));
      const polled = got.filter((b) => b.updates[0]?.[0] === '/up/sw/v');
      expect(polled.map((b) => b.updates)).toEqual(Array.from({ length: SNAPSHOTS }, (_, n) => [['/up/sw/v', n]]));
    });
  }
});
