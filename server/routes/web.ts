/**
 * The web player: `/` serves clients/web/index.html and its hand-written ES modules and CSS;
 * `/vendor/uplot/` serves uPlot's dist folder from node_modules. Everything is local (no
 * CDN). One file is built: `/vendor/protocol.js`, the server's glob matcher
 * (protocol/glob.ts) bundled by scripts/build-web.mjs during `npm run build`, so the page
 * and the server judge globs alike. Run from the sources, it is (re)built here when missing
 * or older than its sources.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

interface WebBuild {
  webProtocolFresh(): Promise<boolean>;
  buildWebProtocol(): Promise<string>;
}

/** One check (and build if needed) per process, shared by every server it starts. */
let bundled: Promise<void> | undefined;

/**
 * Makes clients/web/vendor/protocol.js current when the build script and esbuild are at hand
 * (a checkout); an installation without them serves the bundle `npm run build` made.
 */
function ensureProtocolBundle(root: string): Promise<void> {
  bundled ??= (async () => {
    const script = join(root, '..', '..', 'scripts', 'build-web.mjs');
    if (!existsSync(script)) return;
    const b = (await import(pathToFileURL(script).href)) as WebBuild;
    if (!(await b.webProtocolFresh())) await b.buildWebProtocol();
  })();
  return bundled;
}

export async function webRoutes(app: FastifyInstance): Promise<void> {
  const root = webRoot();
  if (!root) {
    // An installation without the page's files still records and plays back.
    app.log.warn('web player files (clients/web) not found: the player page is not served');
    return;
  }
  try {
    await ensureProtocolBundle(root);
  } catch (err) {
    app.log.warn({ err }, 'could not build the web player\'s glob matcher (clients/web/vendor/protocol.js)');
  }
  if (!existsSync(join(root, 'vendor', 'protocol.js'))) {
    app.log.warn('clients/web/vendor/protocol.js is missing (run `npm run build`): the player page cannot filter paths');
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
