/**
 * Starts the background builds of per-series sidecars (storage/series-index/,
 * docs/prometheus.md "Per-series sidecars") for an archive opened for writing: sealed files
 * found without one at start, each file a rotation seals, and files a query finds without
 * one. A file evicted by retention loses its sidecar with its local copy, and builds it again
 * once fetched back. A read-only archive only reads the sidecars it finds.
 */
import type { Archive, ColdEvent, ColdStorage } from '../storage/index.js';
import { seriesIndexOf, type SeriesIndexStore } from '../storage/series-index/store.js';
import type { CompactOutcome, LiveCompactor } from '../storage/live-compact.js';

export async function startSeriesIndex(archive: Archive, cold?: ColdStorage, compactor?: LiveCompactor): Promise<SeriesIndexStore> {
  const store = seriesIndexOf(archive);
  if (archive.readonly) return store;
  // With the server compacting files, a file's sidecar is built once its compaction settled
  // (compacted or left as recorded); a sidecar of the file as recorded goes when it is replaced.
  const onRotate = (e: { seq: number }): void => {
    if (!compactor) store.enqueue(e.seq);
  };
  const onSettled = (o: CompactOutcome): void => store.enqueue(o.seq);
  const onReplaced = (e: { seq: number; name: string }): void => {
    void store.remove(e.name, e.seq).catch((err: unknown) => archive.logger.warn({ err, file: e.name }, 'could not remove a series sidecar'));
  };
  compactor?.on('settled', onSettled);
  compactor?.on('replaced', onReplaced);
  const onCold = (e: ColdEvent): void => {
    if (e.type === 'evict') void store.remove(e.name).catch((err: unknown) => archive.logger.warn({ err, file: e.name }, 'could not remove a series sidecar'));
    // Fetched back from cold storage: local again, it gets its sidecar.
    if (e.type === 'fetch' && e.ok) store.fetched(e.name);
  };
  archive.on('rotate', onRotate);
  cold?.on('event', onCold);
  archive.once('close', () => {
    archive.off('rotate', onRotate);
    cold?.off('event', onCold);
    compactor?.off('settled', onSettled);
    compactor?.off('replaced', onReplaced);
    void store.stop();
  });
  await store.start();
  return store;
}
