/**
 * `prometheus-scrape`: scrapes Prometheus / OpenMetrics text endpoints like Prometheus does
 * and records each series at its path (protocol/prom-path.ts; docs/prometheus.md).
 *
 * Config: `{ "name": "edge", "type": "prometheus-scrape", "targets": ["http://h:9100/metrics"],
 * "interval"?: "15s", "timeout"?: "10s", "job"?: "<source name>", "labels"?: { "site": "a" },
 * "honor_timestamps"?: true, "headers"?, "backoff_initial"?, "backoff_max"? }`.
 *
 * Each target is scraped by its own poller (server/sources/poller.ts: timeout, retries with
 * backoff, health), so a slow target delays only itself. Every series gets the target's
 * labels `job` (the config's `job`, else the source name), `instance` (the target's
 * host:port) and the config's `labels`; an exposed label of the same name is kept as
 * `exported_<name>`, as Prometheus does without honor_labels.
 *
 * One scrape is one batch stamped when it is recorded: every sample without a timestamp,
 * plus `up` = 1, `scrape_duration_seconds` and `scrape_samples_scraped` for the target.
 * With honor_timestamps (default true) a sample that carries its own timestamp is recorded
 * at that time instead, in a batch of its own, when that time is after the target's
 * previous batch (a scrape's own batch included: the archive cannot take an older one; on
 * the first scrape, no more than an hour before the scraper started, Prometheus' own window)
 * and after the archive's last batch (another target's or source's) and not in the future; otherwise it is left out (counted in the log), never moved to
 * another time. Nothing asks for an encoding: an answer encoded anyway (gzip) fails the
 * scrape naming its encoding.
 *
 * Staleness: a series stamped with the previous scrape of a target and not with this one
 * (missing, or now with a timestamp of its own) is recorded as null in this scrape's batch,
 * and a failed scrape (error, timeout, non-2xx, bad text) records `up` = 0,
 * `scrape_duration_seconds`, `scrape_samples_scraped` (those read before the failure) and
 * null for every series stamped with the target's last good scrape. A series with its own
 * timestamps never gets a null: as in Prometheus, it ends after the query's lookback.
 * null is Tapedeck's stale marker: JavaScript numbers cannot keep the payload of
 * Prometheus' stale NaN.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { seriesToPath } from '../../protocol/prom-path.js';
import { parseExposition, type TextSample } from '../../protocol/prom-text.js';
import { decodeUtf8, type Update } from '../../protocol/value.js';
import type { Duration } from '../duration.js';
import { SERVER_LIMITS } from '../limits.js';
import { POLLER_PROPERTIES, PollError, PollingSource, headerValue, type PollResponse } from './poller.js';
import type { PollEvent, Source, SourceContext, SourceFactory, SourceHealth } from './source.js';

export interface PromScrapeConfig {
  targets: string[];
  interval?: Duration;
  timeout?: Duration;
  backoff_initial?: Duration;
  backoff_max?: Duration;
  headers?: Record<string, string>;
  job?: string;
  labels?: Record<string, string>;
  honor_timestamps?: boolean;
}

const ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1';

/** How far before its start a scraper takes a first sample with its own timestamp: Prometheus' out-of-bounds window (half its 2 h block). */
const FIRST_STAMP_BACK_MS = 60 * 60 * 1000;

/** `# HELP`, `# TYPE`, `# UNIT`: comments Prometheus reads (and refuses when not UTF-8). */
const META_LINE = /^#[ \t]+(?:HELP|TYPE)[ \t]/;

/**
 * The text of a scrape. A sample or HELP line that is not UTF-8 refuses the scrape, as
 * Prometheus does ("invalid UTF-8 label value", "help text is not a valid utf8 string"),
 * where toString would record U+FFFD in the label instead; free comments are skipped by
 * Prometheus and read here as toString reads them.
 */
export function expositionText(body: Buffer): string {
  try {
    return decodeUtf8(body, 'exposition');
  } catch {
    const lines = body.toString('latin1').split('\n');
    let at = 0;
    for (let i = 0; i < lines.length; i++) {
      const n = (lines[i] as string).length;
      const line = body.subarray(at, at + n);
      at += n + 1;
      if (line[0] === 0x23 /* # */ && !META_LINE.test((lines[i] as string))) continue;
      decodeUtf8(line, `exposition line ${i + 1}`);
    }
    return body.toString('utf8');
  }
}

/**
 * A scraped series' labels with the target's (Prometheus without honor_labels): the target's
 * win, and an exposed label they displace is kept as `exported_<name>`, prefixed again while
 * that name is taken (exposed `job` and `exported_job` both kept: `exported_exported_job`),
 * shortest names first, as Prometheus' resolveConflictingExposedLabels does. Empty exposed
 * values are no labels (Prometheus' rule).
 */
export function seriesLabels(exposed: ReadonlyArray<readonly [string, string]>, target: Readonly<Record<string, string>>): Record<string, string> {
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  const taken = new Set<string>();
  const conflicts: Array<[string, string]> = [];
  for (const [k, v] of exposed) {
    if (v === '') continue;
    taken.add(k);
    if (Object.prototype.hasOwnProperty.call(target, k)) conflicts.push([k, v]);
    else labels[k] = v;
  }
  for (const k in target) labels[k] = target[k] as string;
  conflicts.sort((a, b) => a[0].length - b[0].length);
  for (const c of conflicts) {
    let name = c[0];
    do name = `exported_${name}`;
    while (taken.has(name) || Object.prototype.hasOwnProperty.call(target, name));
    taken.add(name);
    labels[name] = c[1];
  }
  return { ...labels };
}

/** One target's scrape loop. */
class TargetScraper extends PollingSource {
  readonly type = 'prometheus-scrape';
  private readonly targetLabels: Record<string, string>;
  private readonly honorTimestamps: boolean;
  /** Paths stamped with the last good scrape (null-ed when they go missing or the target fails). */
  private live = new Set<string>();
  /**
   * The time (µs) of this target's last batch, timestamped samples' or a scrape's own; before
   * any, an hour before the scraper was made (Prometheus leaves out a sample more than an
   * hour older than its newest: out of bounds). A timestamped sample must come after it: the
   * archive only grows in time and its writer would move an older batch after its last one
   * (a sample at a time it was not), and a first scrape's time near the epoch would start
   * the archive in 1970.
   */
  private lastStampUs = (Date.now() - FIRST_STAMP_BACK_MS) * 1000;
  private readonly upPath: string;
  private startedMs = 0;
  /** Samples read by the current scrape before it failed (0 when it failed before its text). */
  private samplesRead = 0;

  constructor(url: string, cfg: PromScrapeConfig, ctx: SourceContext, job: string) {
    super('prometheus-scrape', { ...cfg, url, headers: { accept: ACCEPT, ...(cfg.headers ?? {}) } }, ctx);
    this.targetLabels = { ...(cfg.labels ?? {}), job, instance: new URL(url).host };
    this.honorTimestamps = cfg.honor_timestamps ?? true;
    this.upPath = seriesToPath({ name: 'up', labels: this.targetLabels });
    this.on('poll', (e: PollEvent) => {
      if (!e.ok) void this.recordDown(e.error);
    });
  }

  get target(): string {
    return this.url;
  }

  /** Called by the poller right before each request: the moment the scrape starts. */
  protected override conditionalHeaders(): Record<string, string> {
    this.startedMs = Date.now();
    this.samplesRead = 0;
    return {};
  }

  protected async handle(res: PollResponse): Promise<number> {
    // No Accept-Encoding is sent: an encoded answer (gzip anyway) is not text, and saying so beats "not UTF-8".
    const encoding = headerValue(res.headers, 'content-encoding')?.trim().toLowerCase();
    if (encoding && encoding !== 'identity') throw new PollError(`the answer has content-encoding ${encoding.slice(0, 40)}, which was not asked for (Tapedeck asks for no encoding and decodes none)`);
    const openMetrics = (headerValue(res.headers, 'content-type') ?? '').startsWith('application/openmetrics-text');
    const samples: TextSample[] = [];
    try {
      parseExposition(expositionText(res.body), { samplesMax: SERVER_LIMITS.scrapeSamplesMax, lineBytesMax: SERVER_LIMITS.scrapeLineBytesMax }, openMetrics, samples);
    } catch (err) {
      // Prometheus' scrape_samples_scraped of a refused exposition: the samples before the refusal.
      this.samplesRead = samples.length;
      throw new PollError((err as Error).message);
    }
    const { now, timed, seen } = this.toUpdates(samples, Date.now() * 1000 + 999);
    let n = 0;
    let late = 0;
    for (const [tsUs, updates] of timed) {
      // Another target or source recorded at or past this time since this target's last batch:
      // left out, where the writer would move it after that batch. Checked right before the
      // write, with nothing awaited in between.
      if (tsUs <= (this.ctx.sink.lastTsUs?.() ?? -1)) {
        late += updates.length;
        continue;
      }
      const stamped = await this.ctx.sink.write(updates, tsUs);
      // Another source recorded past this time while the write waited for the queue: the writer moved the batch.
      if (stamped !== undefined && stamped !== tsUs) this.log.warn({ target: this.url, tsUs, stamped }, 'timestamped samples were recorded after another source\'s later batch, not at their own time');
      this.lastStampUs = Math.max(this.lastStampUs, stamped ?? tsUs);
      n += updates.length;
    }
    if (late > 0) this.log.debug({ late, target: this.url }, 'samples with timestamps at or before the archive\'s last batch left out');
    // Series of the last scrape not stamped with this one go stale: gone, or now with their own timestamps.
    for (const p of this.live) if (!seen.has(p)) now.push([p, null]);
    now.push([this.upPath, 1], [this.meta('scrape_duration_seconds'), (Date.now() - this.startedMs) / 1000], [this.meta('scrape_samples_scraped'), samples.length]);
    const stamped = await this.ctx.sink.write(now);
    if (stamped !== undefined) this.lastStampUs = Math.max(this.lastStampUs, stamped);
    this.live = seen.size <= SERVER_LIMITS.scrapeSeriesTrackedMax ? seen : new Set();
    return n + now.length;
  }

  /** The samples as updates: those stamped now, those with their own timestamps by time, and the paths stamped now. */
  private toUpdates(samples: TextSample[], nowUs: number): { now: Update[]; timed: Array<[number, Update[]]>; seen: Set<string> } {
    const now: Update[] = [];
    const byTs = new Map<number, Update[]>();
    /** Per series, the time of its last sample taken from this exposition (the scrape's own: nowUs). */
    const lastOf = new Map<string, number>();
    const stamped = new Set<string>();
    let dropped = 0;
    for (const s of samples) {
      const path = seriesToPath({ name: s.name, labels: this.labelsOf(s) });
      const own = s.tsUs !== undefined && this.honorTimestamps;
      const t = own ? (s.tsUs as number) : nowUs;
      // A series exposed twice is appended twice, as Prometheus does: a sample at or before
      // the series' last one taken is left out (a duplicate or out of order there), and one
      // left out for its time (out of bounds) does not count.
      const last = lastOf.get(path);
      if (last !== undefined && t <= last) continue;
      if (!own) {
        lastOf.set(path, t);
        now.push([path, s.value]);
        stamped.add(path);
      } else if (t > this.lastStampUs && t <= nowUs) {
        lastOf.set(path, t);
        let b = byTs.get(t);
        if (!b) byTs.set(t, (b = []));
        b.push([path, s.value]);
      } else {
        dropped++;
      }
    }
    if (dropped > 0) this.log.debug({ dropped, target: this.url }, 'samples with timestamps out of order or in the future left out');
    // Only series stamped with the scrape go stale (Prometheus tracks no series with its own timestamps).
    return { now, timed: [...byTs.entries()].sort((a, b) => a[0] - b[0]), seen: stamped };
  }

  private labelsOf(s: TextSample): Record<string, string> {
    return seriesLabels(s.labels, this.targetLabels);
  }

  private meta(name: string): string {
    return seriesToPath({ name, labels: this.targetLabels });
  }

  /**
   * A failed scrape: up = 0, its duration and the samples read before it failed (as
   * Prometheus reports one), and every series stamped with the last good scrape goes stale.
   */
  private async recordDown(err: Error): Promise<void> {
    const updates: Update[] = [];
    for (const p of this.live) updates.push([p, null]);
    updates.push([this.upPath, 0], [this.meta('scrape_duration_seconds'), (Date.now() - this.startedMs) / 1000], [this.meta('scrape_samples_scraped'), this.samplesRead]);
    this.live = new Set();
    try {
      await this.ctx.sink.write(updates);
    } catch (e) {
      this.log.warn({ err: (e as Error).message, scrapeError: err.message }, 'could not record a failed scrape');
    }
    this.emit('down', { target: this.url, error: err });
  }
}

export class PromScrapeSource extends EventEmitter implements Source {
  readonly type = 'prometheus-scrape';
  readonly name: string;
  readonly scrapers: readonly TargetScraper[];
  private readonly log: Logger;

  constructor(cfg: PromScrapeConfig, ctx: SourceContext) {
    super();
    this.name = ctx.name;
    this.log = ctx.log;
    const job = cfg.job ?? ctx.name;
    this.scrapers = cfg.targets.map((url) => new TargetScraper(url, cfg, { ...ctx, log: ctx.log.child({ target: url }) }, job));
    for (const s of this.scrapers) {
      s.on('poll', (e: PollEvent) => this.emit('poll', { ...e, target: s.target }));
      s.on('down', (e: unknown) => this.emit('down', e));
    }
  }

  start(): void {
    for (const s of this.scrapers) s.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.scrapers.map((s) => s.stop()));
    this.log.debug('scrapes stopped');
  }

  /** The targets' health folded into one: failing while any target fails, counts summed. */
  health(): SourceHealth {
    const hs = this.scrapers.map((s) => s.health());
    const first = hs[0] as SourceHealth;
    const worst = hs.find((h) => h.status === 'failing') ?? hs.find((h) => h.status === 'starting') ?? first;
    const sum = (k: 'polls' | 'failures' | 'notModified' | 'batches' | 'updates'): number => hs.reduce((n, h) => n + h[k], 0);
    const successes = hs.map((h) => h.lastSuccessMs).filter((t): t is number => t !== null);
    const lastSuccessMs = successes.length === hs.length ? Math.min(...successes) : null;
    return {
      ...worst,
      name: this.name,
      type: this.type,
      lastSuccessMs,
      stalenessMs: lastSuccessMs === null ? null : Date.now() - lastSuccessMs,
      consecutiveFailures: Math.max(...hs.map((h) => h.consecutiveFailures)),
      polls: sum('polls'), failures: sum('failures'), notModified: sum('notModified'), batches: sum('batches'), updates: sum('updates'),
    };
  }
}

const { url: _url, ...POLLER_REST } = POLLER_PROPERTIES;

export const promScrapeSource: SourceFactory = {
  type: 'prometheus-scrape',
  schema: {
    type: 'object',
    required: ['targets'],
    additionalProperties: false,
    properties: {
      ...POLLER_REST,
      targets: { type: 'array', minItems: 1, maxItems: 1024, items: { type: 'string', pattern: '^https?://' } },
      job: { type: 'string', minLength: 1 },
      labels: { type: 'object', additionalProperties: { type: 'string' }, propertyNames: { pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' } },
      honor_timestamps: { type: 'boolean' },
    },
  },
  create: (config, ctx) => new PromScrapeSource(config as unknown as PromScrapeConfig, ctx),
};
