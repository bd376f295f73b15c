/**
 * `http-json`: GETs a JSON API every interval (e.g. a network twin's flow or graph API);
 * one batch per response, stamped when it arrives, or with `snapshot_header`, stamped with
 * the snapshot time the response carries (and identified by it across active/standby
 * recorders; a snapshot seen before is not recorded again). `mode` says how the document
 * is mapped:
 * - `whole` (default): one update, the whole document at `path`;
 * - `leaves`: one update per leaf, at `path` followed by the keys (array indexes) leading
 *   to it, e.g. `/twin/graph/nodes/3/id`; empty objects and arrays are leaves too.
 */
import { decodeUtf8, type Update, type Value } from '../../protocol/value.js';
import { parsePlainJsonText } from '../../protocol/value-json-text.js';
import { SERVER_LIMITS } from '../limits.js';
import { segment } from './csv-matrix.js';
import { POLLER_PROPERTIES, PollError, PollingSource, snapshotTime, type PollResponse, type PollerConfig } from './poller.js';
import type { SourceContext, SourceFactory } from './source.js';

interface HttpJsonConfig extends PollerConfig {
  path?: string;
  mode?: 'whole' | 'leaves';
  /** Response header holding the snapshot time (e.g. X-Snapshot-Ts); null (default) = none. */
  snapshot_header?: string | null;
}

/** The leaves of a JSON value as updates under `base`. Throws PollError past leafUpdatesMax. */
export function explode(base: string, doc: Value): Update[] {
  const out: Update[] = [];
  const walk = (p: string, v: Value, depth: number): void => {
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && depth < SERVER_LIMITS.leafDepthMax) {
      const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
      if (entries.length > 0) {
        for (const [k, x] of entries) walk(`${p}/${segment(k)}`, x, depth + 1);
        return;
      }
    }
    if (out.length >= SERVER_LIMITS.leafUpdatesMax) throw new PollError(`document has more than ${SERVER_LIMITS.leafUpdatesMax} leaves (leafUpdatesMax)`);
    out.push([p, v]);
  };
  // Under the root, children are `/key`, not `//key`.
  if (base === '/' && doc !== null && typeof doc === 'object' && !(doc instanceof Uint8Array) && Object.keys(doc).length > 0) {
    walk('', doc, 0);
  } else {
    walk(base, doc, 0);
  }
  return out;
}

export class HttpJsonSource extends PollingSource {
  readonly type = 'http-json';
  private readonly path: string;
  private readonly mode: 'whole' | 'leaves';
  private readonly snapshotHeader: string | null;
  private lastSnapshotUs: number | undefined;

  constructor(cfg: HttpJsonConfig, ctx: SourceContext) {
    super('http-json', cfg, ctx);
    this.path = (cfg.path ?? `/${ctx.name}`).replace(/(.)\/+$/, '$1');
    this.mode = cfg.mode ?? 'whole';
    this.snapshotHeader = cfg.snapshot_header ?? null;
  }

  protected async handle(res: PollResponse): Promise<number> {
    let doc: Value;
    try {
      // Exactly what was sent: integers past 2^53 as bigints; bytes that are not UTF-8, keys
      // twice in an object and numbers past the largest double refused (value-json-text.ts).
      doc = parsePlainJsonText(decodeUtf8(res.body, 'response'));
    } catch (err) {
      throw new PollError(err instanceof SyntaxError ? `response is not JSON: ${err.message}` : `response refused: ${(err as Error).message}`);
    }
    const updates: Update[] = this.mode === 'whole' ? [[this.path, doc]] : explode(this.path, doc);
    if (updates.length === 0) return 0;
    const tsUs = snapshotTime(res, this.snapshotHeader);
    // A snapshot already recorded is not recorded again.
    if (tsUs !== undefined && this.lastSnapshotUs !== undefined && tsUs <= this.lastSnapshotUs) return 0;
    await this.record(updates, tsUs);
    // Only once it is recorded: a failed write is retried with the same snapshot.
    if (tsUs !== undefined) this.lastSnapshotUs = tsUs;
    return updates.length;
  }
}

export const httpJsonSource: SourceFactory = {
  type: 'http-json',
  schema: {
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: {
      ...POLLER_PROPERTIES,
      path: { type: 'string', pattern: '^/' },
      mode: { enum: ['whole', 'leaves'] },
      snapshot_header: { type: ['string', 'null'], minLength: 1 },
    },
  },
  create: (config, ctx) => new HttpJsonSource(config as unknown as HttpJsonConfig, ctx),
};
