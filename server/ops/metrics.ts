/**
 * Prometheus metrics (prom-client), one registry per server. Counters that mirror state
 * kept elsewhere (writer stats, source health, session stats) are brought up to date when
 * scraped; histograms are observed as things happen.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import type { Archive, ColdStorage } from '../../storage/index.js';
import type { SessionManager } from '../sessions/manager.js';
import type { Source } from '../sources/source.js';
import type { HaRuntime } from '../ha/runtime.js';
import { isWarmUpRequest } from '../promql/prepare.js';
import { CANCELED } from '../client-gone.js';
import { LiveCompactor } from '../../storage/live-compact.js';

/** A counter whose value lives elsewhere: on scrape it catches up with `read()`. */
function mirrorCounter(reg: Registry, name: string, help: string, read: () => number): void {
  let last = 0;
  new Counter({
    name, help, registers: [reg],
    collect() {
      const v = read();
      if (v > last) this.inc(v - last);
      last = Math.max(last, v);
    },
  });
}

export interface MetricsDeps {
  archive: Archive;
  sessions: SessionManager;
  sources: readonly Source[];
  ha?: HaRuntime;
  /** Archive hooks and retention, when configured: hook runs, puts pending, fetches, evictions. */
  cold?: ColdStorage;
}

export function createMetrics(app: FastifyInstance, deps: MetricsDeps): Registry {
  const reg = new Registry();
  // Process metrics of our own: prom-client's defaults include gauges named *_total, which
  // promtool rejects.
  mirrorCounter(reg, 'tapedeck_process_cpu_seconds_total', 'User and system CPU time of the process.', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  new Gauge({ name: 'tapedeck_process_resident_memory_bytes', help: 'Resident set size.', registers: [reg], collect() { this.set(process.memoryUsage().rss); } });
  new Gauge({ name: 'tapedeck_process_heap_used_bytes', help: 'V8 heap in use.', registers: [reg], collect() { this.set(process.memoryUsage().heapUsed); } });
  new Gauge({ name: 'tapedeck_process_start_time_seconds', help: 'Start time of the process, seconds since the epoch.', registers: [reg],
    collect() { this.set(Math.round(performance.timeOrigin / 1000)); } });
  let canceledSeen = { waiting: 0, running: 0, session: 0 };
  new Counter({ name: 'tapedeck_requests_canceled_total', help: 'Requests stopped because their client left before the answer: a PromQL query or metadata request, a /state, /diff or /paths answer, or a merged (cluster) read, `waiting` for a place (never started) or `running` (stopped at its next slice); `session`: a playback session\'s read (a seek, a step, a state, a wait for a cold file) stopped because its stream or asker left or the session ended.', labelNames: ['at'], registers: [reg],
    collect() {
      for (const at of ['waiting', 'running', 'session'] as const) {
        if (CANCELED[at] > canceledSeen[at]) this.inc({ at }, CANCELED[at] - canceledSeen[at]);
        else this.inc({ at }, 0);
      }
      canceledSeen = { ...CANCELED };
    } });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  app.addHook('onClose', async () => loop.disable());
  new Gauge({ name: 'tapedeck_event_loop_delay_seconds', help: 'Event-loop delay since the previous scrape: p50, p99 and max.', labelNames: ['stat'], registers: [reg],
    collect() {
      this.set({ stat: 'p50' }, loop.percentile(50) / 1e9);
      this.set({ stat: 'p99' }, loop.percentile(99) / 1e9);
      this.set({ stat: 'max' }, loop.max / 1e9);
      loop.reset();
    } });
  const { archive, sessions, sources, cold } = deps;
  const w = () => archive.writer?.stats;

  // Recorder / archive
  mirrorCounter(reg, 'tapedeck_batches_written_total', 'Batches appended to the archive.', () => w()?.batches ?? 0);
  mirrorCounter(reg, 'tapedeck_updates_written_total', 'Updates appended to the archive.', () => w()?.updates ?? 0);
  mirrorCounter(reg, 'tapedeck_archive_bytes_written_total', 'Bytes written to archive files.', () => w()?.bytesWritten ?? 0);
  mirrorCounter(reg, 'tapedeck_archive_rotations_total', 'Rotations of the current file.', () => w()?.rotations ?? 0);
  mirrorCounter(reg, 'tapedeck_archive_images_total', 'Full images written.', () => w()?.images ?? 0);
  new Gauge({ name: 'tapedeck_archive_files', help: 'Archive files by location.', labelNames: ['location'], registers: [reg],
    collect() {
      this.reset();
      for (const f of archive.files) this.inc({ location: f.location });
    } });
  new Gauge({ name: 'tapedeck_archive_writer_failed', help: '1 when the archive writer has failed and refuses appends.', registers: [reg],
    collect() { this.set(archive.writer?.error ? 1 : 0); } });
  new Gauge({ name: 'tapedeck_archive_disk_full', help: '1 while the archive file system is full: writes are retried, batches wait in memory, pushes past the buffer limit get 507 TPD_DISK_FULL.', registers: [reg],
    collect() { this.set(archive.writer?.health.state === 'disk_full' ? 1 : 0); } });
  // Damage found and repaired at open (storage/segment-file.ts, storage/catalog.ts): never zero by accident.
  new Gauge({ name: 'tapedeck_archive_recovery', help: 'Damage repaired when the archive was opened: damaged header slots, blocks recovered past them, bytes cut, catalog rebuilds.', labelNames: ['what'], registers: [reg],
    collect() {
      const r = archive.recovery;
      this.set({ what: 'damaged_slots' }, r.damagedSlots);
      this.set({ what: 'recovered_blocks' }, r.recoveredBlocks);
      this.set({ what: 'cut_bytes' }, r.cutBytes);
      this.set({ what: 'catalog_rebuilds' }, r.catalogRebuilds);
    } });
  new Gauge({ name: 'tapedeck_archive_buffered_bytes', help: 'Bytes of archive frames in memory and not committed yet (grows while the disk is full).', registers: [reg],
    collect() { this.set(archive.writer?.health.bufferedBytes ?? 0); } });
  const flush = new Histogram({
    name: 'tapedeck_flush_duration_seconds', help: 'Two-phase commit (fdatasync, header, fdatasync) duration.', registers: [reg],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  const onFlush = (e: { ms: number }): void => flush.observe(e.ms / 1000);
  archive.on('flushed', onFlush);
  app.addHook('onClose', async () => void archive.off('flushed', onFlush));
  // Archive hooks (put, get, list): single runs by result, and calls that gave up.
  const hookSeen = new Map<string, number>();
  const hookRuns = new Counter({ name: 'tapedeck_hook_runs_total', help: 'Archive hook runs (single attempts) by hook and result.', labelNames: ['hook', 'result'], registers: [reg],
    collect() {
      const st = cold?.stats;
      if (!st) return;
      for (const [hook, r] of Object.entries(st.hooks.runs)) {
        for (const [result, n] of Object.entries(r)) {
          const key = `${hook}/${result}`;
          const prev = hookSeen.get(key) ?? 0;
          if (n > prev) this.inc({ hook, result }, n - prev);
          hookSeen.set(key, Math.max(prev, n));
        }
      }
    } });
  void hookRuns;
  new Gauge({ name: 'tapedeck_puts_pending', help: 'Rotated local files whose put hook has not succeeded yet.', registers: [reg],
    collect() { this.set(cold?.stats.putsPending ?? 0); } });
  mirrorCounter(reg, 'tapedeck_files_fetched_total', 'Archive files fetched back by the get hook.', () => cold?.stats.fetched ?? 0);
  mirrorCounter(reg, 'tapedeck_files_evicted_total', 'Local files evicted by retention (their put had succeeded).', () => cold?.stats.evicted ?? 0);

  // Sources
  // Brought up to date by its own collect(), so a scrape shows the polls made until then
  // (not those until the previous scrape).
  const lastSeen = new Map<string, { ok: number; nm: number; err: number }>();
  new Counter({ name: 'tapedeck_source_polls_total', help: 'Source polls by result (ok, not_modified, error).', labelNames: ['source', 'result'], registers: [reg],
    collect() {
      for (const s of sources) {
        const h = s.health();
        const prev = lastSeen.get(s.name) ?? { ok: 0, nm: 0, err: 0 };
        const ok = h.polls - h.failures - h.notModified;
        if (ok > prev.ok) this.inc({ source: s.name, result: 'ok' }, ok - prev.ok);
        if (h.notModified > prev.nm) this.inc({ source: s.name, result: 'not_modified' }, h.notModified - prev.nm);
        if (h.failures > prev.err) this.inc({ source: s.name, result: 'error' }, h.failures - prev.err);
        lastSeen.set(s.name, { ok: Math.max(ok, prev.ok), nm: Math.max(h.notModified, prev.nm), err: Math.max(h.failures, prev.err) });
      }
    } });
  new Gauge({ name: 'tapedeck_source_staleness_seconds', help: 'Seconds since the source last succeeded (-1 before its first success).', labelNames: ['source'], registers: [reg],
    collect() {
      for (const s of sources) {
        const h = s.health();
        this.set({ source: s.name }, h.stalenessMs === null ? -1 : h.stalenessMs / 1000);
      }
    } });
  // Kafka sources: consumer lag per partition (sources with a lag() method, server/sources/kafka.ts).
  new Gauge({ name: 'tapedeck_kafka_consumer_lag', help: 'Messages between the last committed offset and the high watermark, per Kafka source partition.', labelNames: ['source', 'topic', 'partition'], registers: [reg],
    collect() {
      this.reset();
      for (const s of sources) {
        const lag = (s as { lag?: () => Array<{ topic: string; partition: number; lag: number }> }).lag;
        if (typeof lag === 'function') for (const l of lag.call(s)) this.set({ source: s.name, topic: l.topic, partition: String(l.partition) }, l.lag);
      }
    } });
  // Payloads a Kafka source refused (they do not decode in the configured format; docs/kafka.md).
  new Gauge({ name: 'tapedeck_kafka_decode_errors', help: 'Kafka messages refused since start (a payload that does not decode, a time or path the archive cannot hold, a batch the writer refuses): nothing recorded for them, offsets committed (docs/kafka.md, Refused messages).', labelNames: ['source'], registers: [reg],
    collect() {
      for (const s of sources) {
        const st = (s as { stats?: { decodeErrors?: unknown } }).stats;
        if (s.type === 'kafka' && typeof st?.decodeErrors === 'number') this.set({ source: s.name }, st.decodeErrors);
      }
    } });
  new Gauge({ name: 'tapedeck_source_consecutive_failures', help: 'Consecutive failed polls of the source.', labelNames: ['source'], registers: [reg],
    collect() { for (const s of sources) this.set({ source: s.name }, s.health().consecutiveFailures); } });

  // Kafka sink and active/standby
  const ha = deps.ha;
  if (ha) {
    new Gauge({ name: 'tapedeck_ha_role', help: '1 for the role this recorder has (active, standby, degraded = Redis unreachable, publishing without a lease).', labelNames: ['role'], registers: [reg],
      collect() {
        const v = ha.view();
        const role = v.ha?.role ?? 'active';
        for (const r of ['active', 'standby', 'degraded']) this.set({ role: r }, r === role ? 1 : 0);
      } });
    new Gauge({ name: 'tapedeck_ha_redis_up', help: '1 when Redis answers the lease commands (always 1 without active/standby).', registers: [reg],
      collect() { this.set(ha.view().ha?.redis === 'unreachable' ? 0 : 1); } });
    new Gauge({ name: 'tapedeck_ha_fencing_token', help: 'The fencing token of the lease this recorder last saw or took.', registers: [reg],
      collect() { this.set(ha.view().ha?.fencingToken ?? 0); } });
    mirrorCounter(reg, 'tapedeck_ha_transitions_total', 'Role changes of this recorder.', () => ha.view().ha?.transitions ?? 0);
    new Gauge({ name: 'tapedeck_sink_buffer_batches', help: 'Batches in the standby buffer (the last buffer_window, and older ones the topic does not hold yet).', registers: [reg],
      collect() { this.set(ha.view().sink?.bufferDepth ?? 0); } });
    new Gauge({ name: 'tapedeck_sink_queue_batches', help: 'Batches waiting to be published to Kafka.', registers: [reg],
      collect() { this.set(ha.view().sink?.queueDepth ?? 0); } });
    mirrorCounter(reg, 'tapedeck_sink_published_batches_total', 'Batches published to the Kafka sink topic.', () => ha.view().sink?.published ?? 0);
    mirrorCounter(reg, 'tapedeck_sink_dropped_batches_total', 'Batches dropped unpublished because the sink queue was full.', () => ha.view().sink?.dropped ?? 0);
    mirrorCounter(reg, 'tapedeck_sink_uncertain_promotions_total', 'Promotions that published before the sink topic had been read to its end (duplicates possible).', () => ha.view().sink?.uncertainPromotions ?? 0);
    mirrorCounter(reg, 'tapedeck_sink_buffer_overflow_batches_total', 'Batches the topic may lack that were dropped from a full standby buffer.', () => ha.view().sink?.bufferOverflows ?? 0);
    mirrorCounter(reg, 'tapedeck_sink_send_errors_total', 'Failed produce requests to the sink topic (retried).', () => ha.view().sink?.sendErrors ?? 0);
  }

  // Sessions
  new Gauge({ name: 'tapedeck_sessions_active', help: 'Playback sessions open.', registers: [reg], collect() { this.set(sessions.size); } });
  mirrorCounter(reg, 'tapedeck_sessions_created_total', 'Playback sessions created.', () => sessions.stats.created);
  mirrorCounter(reg, 'tapedeck_sessions_collected_total', 'Sessions collected after their client left.', () => sessions.stats.collected);
  mirrorCounter(reg, 'tapedeck_session_frames_sent_total', 'WebSocket frames sent to playback clients.', () => sessions.stats.framesSent);
  mirrorCounter(reg, 'tapedeck_session_bytes_sent_total', 'Bytes sent to playback clients.', () => sessions.stats.bytesSent);
  const pacing = new Histogram({
    name: 'tapedeck_pacing_error_seconds', help: 'Absolute difference between the intended and the actual send time of paced batches.', registers: [reg],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
  });
  sessions.pacingObserver = (ms) => pacing.observe(ms / 1000);

  // Compaction by the server (storage/live-compact.ts), when it runs.
  const compactor = deps.archive.settling instanceof LiveCompactor ? deps.archive.settling : undefined;
  if (compactor) {
    const s = compactor.stats;
    let seen = { compacted: 0, declined: 0, skipped: 0, failed: 0, gaveUp: 0 };
    new Counter({ name: 'tapedeck_compaction_files_total', help: 'Rotated files the server compacted (`compacted`), left as recorded because compacting saved too little (`declined`) or did not apply (`skipped`: open, damaged, shipped, already compact), whose swap found reads in flight at every try (`gave_up`), or whose compaction failed (`failed`).', labelNames: ['result'], registers: [reg],
      collect() {
        const now = { compacted: s.compacted, declined: s.declined, skipped: s.skipped, failed: s.failed, gaveUp: s.gaveUp };
        for (const k of Object.keys(now) as Array<keyof typeof now>) this.inc({ result: k === 'gaveUp' ? 'gave_up' : k }, now[k] - seen[k]);
        seen = now;
      } });
    mirrorCounter(reg, 'tapedeck_compaction_bytes_before_total', 'Bytes of the files the server compacted, as recorded.', () => s.bytesBefore);
    mirrorCounter(reg, 'tapedeck_compaction_bytes_after_total', 'Bytes of the same files after compaction.', () => s.bytesAfter);
    mirrorCounter(reg, 'tapedeck_compaction_swap_retries_total', 'Swaps of a compacted file put off because reads were in flight past the read gate\'s waits (tried again later).', () => s.swapRetries);
    new Gauge({ name: 'tapedeck_compaction_queued', help: 'Rotated files waiting to be compacted.', registers: [reg], collect() { this.set(s.queued); } });
  }

  // HTTP
  const http = new Histogram({
    name: 'tapedeck_http_request_duration_seconds', help: 'HTTP request duration by route and status.', labelNames: ['method', 'route', 'status'], registers: [reg],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
  });
  app.addHook('onResponse', (req, reply, done) => {
    // Not the query path's warm-up at start (server/promql/prepare.ts): users did not ask it.
    if (isWarmUpRequest(req)) return done();
    http.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
  return reg;
}
