/**
 * The web player: `/` serves clients/web/index.html and its hand-written ES modules and CSS;
 * `/vendor/uplot/` serves uPlot's dist folder from node_modules. Everything is local (no
 * CDN) and nothing is built: the files are served as they are in the repository.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';

/**
 * clients/web from this file: two levels up when run from the sources (tsx, vitest), three
 * when run from dist/server/routes (the compiled CLI; tsc does not copy the page's files).
 */
export function webRoot(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'clients', 'web'), join(here, '..', '..', '..', 'clients', 'web')];
  return candidates.find((d) => existsSync(join(d, 'index.html')));
}

/** node_modules/uplot/dist, wherever npm put it. */
export function uplotRoot(): string {
  return dirname(createRequire(import.meta.url).resolve('uplot'));
}

export async function webRoutes(app: FastifyInstance): Promise<void> {
  const root = webRoot();
  if (!root) {
    // An installation without the page's files still records and plays back.
    app.log.warn('web player files (clients/web) not found: the player page is not served');
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    index: 'index.html',
    wildcard: false,
    // The page is small and changes with the server: let browsers revalidate each load.
    cacheControl: true,
    maxAge: 0,
  });
  await app.register(fastifyStatic, {
    root: uplotRoot(),
    prefix: '/vendor/uplot/',
    decorateReply: false,
    wildcard: false,
    allowedPath: (path) => path === '/uPlot.esm.js' || path === '/uPlot.min.css',
  });
}
