/**
 * What a server prepares for the query API right after it starts, in the background, the
 * way Prometheus loads its head block's index before it reports ready (docs/prometheus.md,
 * "Performance"): the sidecar indexes of the sealed files a dashboard's range reads (those
 * that end within promqlPrepareSpanMs of the archive's newest file) and the series catalog.
 * Without it a fresh process's first query did both (a day of 10 000 series: hundreds of
 * milliseconds).
 *
 * Never answered from half-built state: the catalog is built synchronously (a selection
 * finds it whole or builds it itself), and a query that needs a sidecar index being loaded
 * waits for that load (storage/series-index/store.ts). /ready says `promql` is not ready
 * meanwhile. Archives past promqlPrepareCatalogPathsMax paths build their catalog at their
 * first query instead (its memory is one label set a path).
 */
import type { Archive } from '../../storage/index.js';
import type { FileEntry } from '../../storage/file-list.js';
import { seriesIndexOf } from '../../storage/series-index/store.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';
import { SERVER_LIMITS } from '../limits.js';
import { prepareCatalog } from './catalog.js';

interface Preparation {
  done: boolean;
  detail: string;
  finished: Promise<void>;
}

const preparations = new WeakMap<Archive, Preparation>();

/**
 * Starts the preparation of `archive` (once); resolves when it ends, whatever it found. With
 * no sidecar to load (an archive without sealed files) it is done before this returns: the
 * catalog alone is one synchronous step, so such a server is ready as soon as it starts.
 */
export function startPromqlPreparation(archive: Archive): Promise<void> {
  const known = preparations.get(archive);
  if (known) return known.finished;
  const p: Preparation = { done: false, detail: 'loading the series catalog and sidecar indexes', finished: Promise.resolve() };
  preparations.set(archive, p);
  const files = filesToPrepare(archive.files);
  const failed = (err: unknown): void => {
    // Queries do the work themselves then; a closed archive has nothing to answer anyway.
    p.detail = `not prepared (${(err as Error).message ?? String(err)}): the first query prepares`;
    if (!archive.isClosed) archive.logger.warn({ err: p.detail }, 'PromQL preparation failed');
  };
  if (files.length === 0) {
    try {
      p.detail = catalogStep(archive, 0);
    } catch (err) {
      failed(err);
    }
    p.done = true;
    return p.finished;
  }
  p.finished = loadIndexes(archive, files).then((indexes) => {
    p.detail = catalogStep(archive, indexes);
  }, failed).catch(failed).finally(() => {
    p.done = true;
  });
  return p.finished;
}

/** /ready's check for the query API: absent when no preparation was started for `archive`. */
export function promqlReadiness(archive: Archive): Array<{ check: string; ok: boolean; detail: string }> {
  const p = preparations.get(archive);
  return p ? [{ check: 'promql', ok: p.done, detail: p.detail }] : [];
}

/** The sealed local files whose sidecars are loaded: ending within promqlPrepareSpanMs of the newest, newest first. */
export function filesToPrepare(files: readonly FileEntry[]): FileEntry[] {
  let newestUs = -Infinity;
  for (const f of files) if (f.lastTs !== null && f.lastTs > newestUs) newestUs = f.lastTs;
  const fromUs = newestUs - SERVER_LIMITS.promqlPrepareSpanMs * 1000;
  return files
    .filter((f) => f.sealed && f.location === 'local' && f.lastTs !== null && f.lastTs >= fromUs)
    .sort((a, b) => b.seq - a.seq)
    .slice(0, STORAGE_LIMITS.seriesIndexOpenMax);
}

/** Loads the sidecar indexes of `files`; how many were usable. */
async function loadIndexes(archive: Archive, files: readonly FileEntry[]): Promise<number> {
  // After the start's own work (listening, sources): this is background work.
  await new Promise<void>((resolve) => setImmediate(resolve));
  const store = seriesIndexOf(archive);
  let indexes = 0;
  for (const f of files) {
    if (archive.isClosed) throw new Error('archive closed');
    if (await store.indexOf(f)) indexes++;
  }
  return indexes;
}

/** Builds the series catalog (unless the archive is past promqlPrepareCatalogPathsMax); what /ready then says. */
function catalogStep(archive: Archive, indexes: number): string {
  if (archive.isClosed) throw new Error('archive closed');
  if (archive.paths.length > SERVER_LIMITS.promqlPrepareCatalogPathsMax) return `${indexes} sidecar indexes loaded; the series catalog of ${archive.paths.length} paths is built at the first query (promqlPrepareCatalogPathsMax)`;
  const paths = prepareCatalog(archive);
  return `${indexes} sidecar indexes loaded, series catalog of ${paths} paths built`;
}
