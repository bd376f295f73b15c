/**
 * An archive with cold storage whose get hook is held by FIFOs (test/fixtures/hooks/
 * get-held.sh): a fetch of file NAME waits while HOLD/NAME is a FIFO until a line is written
 * to it, so a test decides when each fetch ends. Puts copy to COLD; every shipped file is
 * evicted at once (retention maxBytes 1); checks and lists run only when asked.
 */
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer, type ServerOptions } from '../../server/app.js';
import { Archive } from '../../storage/archive.js';
import { ColdStorage, type ColdEvent } from '../../storage/cold.js';

const FIX = resolve('test/fixtures/hooks');

export interface HeldGets {
  a: Archive;
  c: ColdStorage;
  /** Where puts copy files to. */
  cold: string;
  /** Where the FIFOs that hold the gets go. */
  hold: string;
}

/** The archive under `base`/archive, cold storage in `base`/cold, FIFOs in `base`/hold. */
export async function heldGets(base: string): Promise<HeldGets> {
  const cold = join(base, 'cold');
  const hold = join(base, 'hold');
  await mkdir(cold);
  await mkdir(hold);
  const a = await Archive.open(join(base, 'archive'), { flushIntervalMs: 0, rotateIntervalMs: 0 });
  const c = await ColdStorage.start(a, {
    hooks: { put: { cmd: join(FIX, 'put-copy.sh'), args: [cold] }, get: { cmd: join(FIX, 'get-held.sh'), args: [cold, hold] } },
    retention: { maxAgeMs: 0, maxBytes: 1 },
    checkIntervalMs: 0,
    listIntervalMs: 0,
    fetchedKeepMs: 0,
  });
  return { a, c, cold, hold };
}

/**
 * `files` rotated files, each written by `write(f)`, shipped and evicted, each one's get held
 * by a FIFO: their names, and release(), which lets every held fetch finish (one waiting on
 * a FIFO now, or a later one: the FIFOs are removed).
 */
export async function heldFiles(h: HeldGets, files: number, write: (f: number) => void): Promise<{ names: string[]; release(): Promise<void> }> {
  for (let f = 0; f < files; f++) {
    write(f);
    const put = new Promise<void>((done) => h.c.once('event', (e: ColdEvent) => e.type === 'put' && done()));
    await h.a.writer!.rotate();
    await put;
  }
  await h.c.check();
  const names = h.a.files.filter((f) => f.location === 'remote').map((f) => f.name);
  for (const n of names) execFileSync('mkfifo', [join(h.hold, n)]);
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    // A get may be waiting on each FIFO (opened read-write: no wait when none is); gone
    // afterwards, so a later get does not wait at all.
    for (const n of names) execFileSync('sh', ['-c', `exec 3<>"$1"; echo go >&3; rm -f "$1"`, 'sh', join(h.hold, n)]);
  };
  return { names, release };
}

/** A server over a held-gets archive. */
export interface HeldServer {
  a: Archive;
  c: ColdStorage;
  app: FastifyInstance;
  url: string;
  /** Lets every held fetch finish. */
  release(): Promise<void>;
}

/** Serves `h`'s archive and cold storage on a free port (`opts` added to buildServer's). */
export async function serveHeld(h: HeldGets, release: () => Promise<void>, opts: Partial<ServerOptions> = {}): Promise<HeldServer> {
  const app = await buildServer({ archive: h.a, cold: h.c, ...opts });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { a: h.a, c: h.c, app, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, release };
}

/** Lets the held fetches go, then closes the server, cold storage and the archive. */
export async function closeHeld(r: HeldServer | undefined): Promise<void> {
  await r?.release();
  await r?.app.close();
  await r?.c.stop();
  await r?.a.close();
}
