/**
 * The recorder process: from a resolved config, start the simulator (when configured), open
 * the archive, create the recorder and the sources, build the fastify app and listen.
 * close() shuts down in the order that loses nothing: sources stop (whatever a source had
 * received is recorded first; push ingest refuses new bodies and finishes the ones in
 * hand), the app closes (in-flight requests complete, playback sessions close in its
 * onClose hook), then the archive writer flushes and the archive closes.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { Archive, ColdStorage } from '../storage/index.js';
import { nativeCodecState } from '../storage/native-codec-file.js';
import { TapedeckError } from '../protocol/errors.js';
import { buildServer } from './app.js';
import { isLoopback } from './ops/auth.js';
import { sourcesWithoutIdentity, type ServeConfig } from './config.js';
import { SERVER_LIMITS } from './limits.js';
import { tuneHeapForServing } from './heap.js';
import { Recorder } from './recorder.js';
import { CoverageLog } from './coverage.js';
import { startSeriesIndex } from './series-index.js';
import { LiveCompactor } from '../storage/live-compact.js';
import { startPromqlPreparation, warmUpOf } from './promql/prepare.js';
import { Simulator } from './sim/simulator.js';
import { HaRuntime } from './ha/runtime.js';
import { ClusterRuntime, isPollSource, ownedSink } from './cluster/runtime.js';
import { clusterStatusRoutes } from './routes/cluster-status.js';
import { SOURCE_TYPES } from './sources/registry.js';
import type { Source } from './sources/source.js';

export interface RunningServer {
  app: FastifyInstance;
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080. */
  url: string;
  archive: Archive;
  recorder: Recorder | undefined;
  sources: Source[];
  simulator: Simulator | undefined;
  /** Archive hooks (put, list, get) and retention; undefined when no hook is configured. */
  cold: ColdStorage | undefined;
  /** The Kafka sink and active/standby; undefined without kafka_sink. */
  ha: HaRuntime | undefined;
  /** This recorder as a shard (docs/cluster.md); undefined without a cluster section. */
  cluster: ClusterRuntime | undefined;
  log: Logger;
  /** Graceful shutdown; safe to call more than once. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

/** `{simulator}` in string options becomes the in-process simulator's base URL. */
function withSimulatorUrl(options: Record<string, unknown>, sim: Simulator | undefined): Record<string, unknown> {
  if (!sim) return options;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) out[k] = typeof v === 'string' ? v.replaceAll('{simulator}', sim.url) : v;
  return out;
}

/** Starts archive hooks and retention (docs/archive-hooks.md) when any hook is configured. */
async function startCold(config: ServeConfig, archive: Archive, log: Logger): Promise<ColdStorage | undefined> {
  const { list, get, put } = config.archiveCmds;
  const ret = config.retention;
  if (!put && (ret.maxAgeMs > 0 || ret.maxBytes > 0)) log.warn('retention is configured without a put hook: only shipped files are removed, so none will be');
  if (!list && !get && !put) return undefined;
  if (archive.readonly) {
    log.warn('archive_cmds are ignored: hooks need an archive opened for writing (a record section)');
    return undefined;
  }
  const h = config.archiveHooks;
  const policy = { attempts: h.attempts, backoffInitialMs: h.backoffInitialMs, backoffMaxMs: h.backoffMaxMs };
  return ColdStorage.start(archive, {
    hooks: { list, get, put },
    policy: { put: { ...policy, timeoutMs: h.timeoutMs }, get: { ...policy, attempts: h.getAttempts, timeoutMs: h.getTimeoutMs }, list: { ...policy, timeoutMs: h.listTimeoutMs } },
    retention: { maxAgeMs: ret.maxAgeMs, maxBytes: ret.maxBytes },
    listIntervalMs: h.listIntervalMs,
    checkIntervalMs: ret.checkIntervalMs,
    fetchedKeepMs: ret.keepFetchedMs,
  });
}

export async function startServer(config: ServeConfig, opts: StartOptions = {}): Promise<RunningServer> {
  tuneHeapForServing();
  const log = opts.logger ?? pino({ level: config.logLevel, base: { pid: process.pid } });
  if (!config.record && config.sources.length > 0) {
    throw new TapedeckError('TPD_BAD_CONFIG', 'sources are configured but record is null: sources need a record section');
  }
  if (config.tokens.length === 0 && !isLoopback(config.publish.host)) {
    throw new TapedeckError('TPD_BAD_CONFIG', `publish.bind: ${config.publish.host} is not a loopback address and auth.tokens is empty; an open server may only listen on 127.0.0.1 or ::1`);
  }
  if (config.tokens.length === 0) log.warn({ host: config.publish.host }, 'no auth tokens configured: the server is open to anyone who can reach this loopback address');
  const cleanups: Array<() => Promise<void>> = [];
  const undo = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    let simulator: Simulator | undefined;
    if (config.simulator) {
      const s = config.simulator;
      simulator = await Simulator.start({ port: s.port, switches: s.switches, intervalMs: s.intervalMs, fault500Pct: s.fault500Pct, faultSlowMs: s.faultSlowMs, seed: s.seed });
      cleanups.push(() => (simulator as Simulator).close());
      log.info({ url: simulator.url, switches: s.switches }, 'simulator started');
    }
    const r = config.record;
    const archiveLog = log.child({ component: 'archive' });
    const archive = r
      ? await Archive.open(config.archiveDirectory, {
        imageFrequencyBytes: r.imageFrequencyBytes,
        flushFrequencyPages: r.flushFrequencyPages,
        flushIntervalMs: r.flushIntervalMs,
        rotateIntervalMs: r.rotateIntervalMs,
        rotateSizeBytes: r.rotateSizeBytes,
        logger: archiveLog,
      })
      : await Archive.open(config.archiveDirectory, { readonly: true, logger: archiveLog });
    cleanups.push(() => archive.close());
    // Before cold storage and sidecar builds: a file's put and build wait for its compaction.
    const compactor = r?.compact === true ? new LiveCompactor(archive) : undefined;
    if (compactor) {
      await compactor.start();
      cleanups.push(() => compactor.stop());
    }
    const cold = await startCold(config, archive, log);
    if (cold) cleanups.push(() => cold.stop());
    await startSeriesIndex(archive, cold, compactor);
    const recorder = r ? await Recorder.open(archive, { spec: r.spec }) : undefined;
    const sources: Source[] = [];
    const cluster = config.cluster ? new ClusterRuntime(config.cluster) : undefined;
    for (const e of config.sources) {
      const factory = SOURCE_TYPES[e.type];
      if (!factory || !recorder) throw new TapedeckError('TPD_BAD_CONFIG', `source ${e.name}: unknown type ${e.type}`);
      const sink = recorder.sink(e.name);
      sources.push(factory.create(withSimulatorUrl(e.options, simulator), {
        name: e.name,
        // In a cluster a poll source records only the paths this shard owns.
        sink: cluster && isPollSource(e.type) ? ownedSink(sink, cluster.ownership, cluster.counts) : sink,
        log: log.child({ source: e.name, sourceType: e.type }),
        defaultPollIntervalMs: (r as NonNullable<typeof r>).pollIntervalMs,
      }));
    }
    // The sink listens before the sources start, so it sees every batch.
    if (config.ha) {
      const unmatched = sourcesWithoutIdentity(config);
      if (unmatched.length > 0) {
        log.warn({ sources: unmatched }, 'active/standby: these sources carry no identity shared by the recorders (docs/ha.md); their batches are matched by local time on promotion, so clock skew between the recorders can lose or repeat a few of them');
      }
    }
    // The run starts (and a crash before it shows as a gap) before any source records.
    const coverage = await CoverageLog.open(archive, log.child({ component: 'coverage' }), recorder ? { recorder, sources } : undefined);
    cleanups.push(() => coverage.stop());
    const ha = await HaRuntime.start(config, recorder, log);
    if (ha) cleanups.push(() => ha.stop());
    const app = await buildServer({
      archive,
      loggerInstance: log,
      ...(recorder ? { recorder } : {}),
      sources,
      playback: { maxSessions: config.publish.maxSessions, maxSessionsPerClient: config.publish.maxSessionsPerClient, sessionGraceMs: config.publish.sessionGraceMs },
      tokens: config.tokens,
      rateLimit: config.publish.rateLimit ?? false,
      ...(config.publish.maxConnectionsPerAddress === undefined ? {} : { connectionsPerAddressMax: config.publish.maxConnectionsPerAddress }),
      readiness: config.sources.map((s) => ({ source: s.name, ...s.readiness })),
      coverage,
      ...(ha ? { ha } : {}),
      ...(cold ? { cold } : {}),
      // Merged reads ask it; it answers once the shard has joined (just after listening).
      ...(cluster ? { directory: cluster.shardDirectory } : {}),
    });
    cleanups.push(() => app.close());
    if (cluster) await app.register(clusterStatusRoutes, { cluster });
    // The query API's sidecar indexes and series catalog, in the background; started before
    // listening so that /ready never answers without its check (a cluster joins in between).
    void startPromqlPreparation(archive, config.publish.promqlWarmUp ? warmUpOf(app, config.tokens) : undefined);
    await app.listen({ host: config.publish.host, port: config.publish.port });
    const a = app.server.address() as AddressInfo;
    const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    // Membership before the sources: overlapping globs stop the start before anything is recorded.
    if (cluster) {
      await cluster.start(url, recorder, sources, log.child({ component: 'cluster' }));
      cleanups.push(() => cluster.stop());
    }
    for (const s of sources) s.start();
    log.info({ url, archive: config.archiveDirectory, sources: sources.map((s) => `${s.name}:${s.type}`), spec: r?.spec ?? null, payloadEncoder: nativeCodecState() ?? 'none (no archive open for writing)' }, 'listening');

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        log.info('shutting down');
        await Promise.all(sources.map((s) => s.stop()));
        // The active publishes what it has queued, then hands its lease over.
        await ha?.stop();
        await cluster?.stop();
        const grace = setTimeout(() => {
          log.warn({ graceMs: SERVER_LIMITS.shutdownGraceMs }, 'requests still open after the grace period; closing their connections');
          app.server.closeAllConnections();
        }, SERVER_LIMITS.shutdownGraceMs);
        try {
          await app.close();
        } finally {
          clearTimeout(grace);
        }
        const stats = recorder?.stats;
        await cold?.stop();
        await archive.close();
        // After the last flush: the run's stop names its last committed batch.
        await coverage.stop();
        await simulator?.close();
        log.info({ recorded: stats ?? null }, 'stopped');
      })();
      return closing;
    };
    return { app, url, archive, recorder, sources, simulator, cold, ha, cluster, log, close };
  } catch (err) {
    await undo();
    throw err;
  }
}
