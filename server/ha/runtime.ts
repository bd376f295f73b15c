/**
 * The Kafka sink and, when configured, the active/standby coordinator, wired together:
 * the coordinator's role decides whether the sink publishes. Without `ha` the sink always
 * publishes. Started before the sources (no batch is missed), stopped after them.
 */
import type { Logger } from 'pino';
import type { ServeConfig } from '../config.js';
import type { Recorder } from '../recorder.js';
import { KafkaSink, KAFKA_SINK_DEFAULTS, type SinkStatus } from '../sinks/kafka.js';
import { HaCoordinator, type HaStatus } from './coordinator.js';

export interface HaView {
  enabled: boolean;
  ha: HaStatus | null;
  sink: SinkStatus | null;
}

export const HA_SHUTDOWN = {
  /** At a graceful stop, the active publishes what it has queued for at most this long. */
  drainMaxMs: 5_000,
} as const;

export class HaRuntime {
  readonly sink: KafkaSink | undefined;
  readonly coordinator: HaCoordinator | undefined;
  private readonly log: Logger;
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];

  private constructor(sink: KafkaSink | undefined, coordinator: HaCoordinator | undefined, log: Logger) {
    this.sink = sink;
    this.coordinator = coordinator;
    this.log = log;
  }

  static async start(config: ServeConfig, recorder: Recorder | undefined, log: Logger): Promise<HaRuntime | undefined> {
    const k = config.kafkaSink;
    if (!k) return undefined;
    if (!recorder) {
      log.warn('kafka_sink is ignored: nothing is recorded (record is null)');
      return undefined;
    }
    const h = config.ha;
    const slog = log.child({ component: 'kafka-sink' });
    const sink = new KafkaSink({
      brokers: k.brokers, topic: k.topic, format: k.format, key: k.key, clientId: k.clientId,
      recorderId: h?.id ?? `solo-${process.pid}`,
      queueMaxBatches: k.queueMaxBatches,
      bufferWindowMs: h?.bufferWindowMs ?? KAFKA_SINK_DEFAULTS.bufferWindowMs,
      bufferMaxBatches: h?.bufferMaxBatches ?? KAFKA_SINK_DEFAULTS.bufferMaxBatches,
      promotionMaxWaitMs: h?.promotionMaxWaitMs ?? KAFKA_SINK_DEFAULTS.promotionMaxWaitMs,
      followTail: h !== null,
      log: slog,
    });
    await sink.start(recorder);
    if (!h) {
      await sink.setActive(0);
      return new HaRuntime(sink, undefined, log);
    }
    const coordinator = new HaCoordinator({ redisUrl: h.redisUrl, cluster: h.cluster, id: h.id, leaseTtlMs: h.leaseTtlMs, onRedisLoss: h.onRedisLoss, log: log.child({ component: 'ha' }) });
    coordinator.demote = () => sink.quiesce();
    sink.mayPublish = () => coordinator.mayPublish();
    coordinator.on('sink-key', (key: string) => sink.adoptKey(key));
    coordinator.on('role', (role: string, token: number) => {
      if (role === 'standby') sink.setStandby();
      else void sink.setActive(token).catch((err: unknown) => slog.error({ err }, 'kafka sink: the promotion failed; not publishing'));
    });
    await coordinator.start();
    const rt = new HaRuntime(sink, coordinator, log);
    rt.installSignals();
    return rt;
  }

  /** SIGUSR1: force active; SIGUSR2: force standby; SIGHUP: release the force; SIGWINCH: refresh the own timestamp. */
  private installSignals(): void {
    const c = this.coordinator as HaCoordinator;
    const on = (sig: NodeJS.Signals, what: string, f: () => Promise<void>): void => {
      const h = (): void => {
        this.log.warn({ signal: sig }, `ha: ${what} (signal)`);
        f().catch((err: unknown) => this.log.error({ err }, `ha: ${what} failed`));
      };
      process.on(sig, h);
      this.signalHandlers.push([sig, h]);
    };
    on('SIGUSR1', 'force active', () => c.forceActive());
    on('SIGUSR2', 'force standby', () => c.forceStandby());
    on('SIGHUP', 'release force', () => c.releaseForce());
    // Node has no third user signal; SIGWINCH (window size changed) reaches a process only
    // from a terminal, so it means "refresh" only for a recorder without one (a service):
    // in a foreground terminal every resize would hand the role over.
    if (!process.stdin.isTTY && !process.stdout.isTTY) on('SIGWINCH', 'refresh own timestamp', () => c.refreshTimestamp());
  }

  view(): HaView {
    return { enabled: this.coordinator !== undefined, ha: this.coordinator?.status() ?? null, sink: this.sink?.status() ?? null };
  }

  /** Publishes what is queued (bounded), hands the lease over, stops. */
  async stop(): Promise<void> {
    for (const [sig, h] of this.signalHandlers) process.off(sig, h);
    const deadline = Date.now() + HA_SHUTDOWN.drainMaxMs;
    while (this.sink && this.sink.status().publishing && this.sink.status().queueDepth > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.coordinator?.stop();
    await this.sink?.stop();
  }
}
