/**
 * `csv-matrix`: polls a CSV matrix (seed 001's /counters): a header row of column names,
 * then one row per entity; the first column (or `id_column`) names the entity, every other
 * column is a metric. Cell (entity, metric) is recorded at `<prefix>/<entity>/<metric>`,
 * typed (numbers as numbers, empty cells as null).
 *
 * Sends If-None-Match with the last ETag (304 = nothing changed); takes the snapshot time
 * from `snapshot_header` (X-Snapshot-Ts by default: epoch s/ms/µs or RFC 3339) when present;
 * writes only the cells that changed since the last good snapshot, and null for cells that
 * disappeared (a row or column gone). A malformed matrix fails the poll as a whole: nothing
 * of it is recorded and the last good snapshot stays the reference.
 */
import { decodeUtf8, isWellFormed, type Update, type Value } from '../../protocol/value.js';
import { CsvError, cellValue, parseCsv } from './csv.js';
import { POLLER_PROPERTIES, PollError, PollingSource, headerValue, snapshotTime, type PollResponse, type PollerConfig } from './poller.js';
import type { SourceContext, SourceFactory } from './source.js';

interface CsvMatrixConfig extends PollerConfig {
  prefix?: string;
  id_column?: string;
  snapshot_header?: string | null;
}

/**
 * A path segment from a CSV cell or a JSON key: `/` and `%` are percent-encoded so one cell
 * is one level; NUL and lone surrogates, which no path holds (isValidPath), are written as
 * the %XX of their (WTF-8) bytes, so a key holding one is a level of its own, not a poll
 * refused whole. Text without `%` or them is unchanged.
 */
export function segment(text: string): string {
  const s = text.replace(/%/g, '%25').replace(/\//g, '%2F');
  return isWellFormed(s) && !s.includes('\0') ? s : s.replace(ODD_CHARS, (c) => `%${wtf8Hex(c.charCodeAt(0))}`);
}

// eslint-disable-next-line no-control-regex
const ODD_CHARS = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** %XX%XX... of a code unit's bytes in WTF-8 (NUL is 00; a surrogate three bytes, ED ..). */
function wtf8Hex(u: number): string {
  if (u === 0) return '00';
  const b = [0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f)];
  return b.map((x) => x.toString(16).toUpperCase()).join('%');
}

export class CsvMatrixSource extends PollingSource {
  readonly type = 'csv-matrix';
  private readonly prefix: string;
  private readonly idColumn: string | undefined;
  private readonly snapshotHeader: string | null;
  private etag: string | undefined;
  /** The last good matrix: the reference for what changed. */
  private snapshot = new Map<string, Value>();

  constructor(cfg: CsvMatrixConfig, ctx: SourceContext) {
    super('csv-matrix', cfg, ctx);
    this.prefix = (cfg.prefix ?? `/${ctx.name}`).replace(/\/+$/, '');
    this.idColumn = cfg.id_column;
    this.snapshotHeader = cfg.snapshot_header === undefined ? 'x-snapshot-ts' : cfg.snapshot_header;
  }

  protected override conditionalHeaders(): Record<string, string> {
    return this.etag ? { 'if-none-match': this.etag } : {};
  }

  protected async handle(res: PollResponse): Promise<number> {
    let text: string;
    try {
      text = decodeUtf8(res.body, 'response');
    } catch (err) {
      // Not recorded with U+FFFD in the cells: the poll fails, saying why.
      throw new PollError((err as Error).message);
    }
    const next = this.parse(text);
    const tsUs = snapshotTime(res, this.snapshotHeader);
    const changes: Update[] = [];
    for (const [path, v] of next) {
      const old = this.snapshot.get(path);
      if (old === undefined ? true : !Object.is(old, v)) changes.push([path, v]);
    }
    for (const path of this.snapshot.keys()) if (!next.has(path)) changes.push([path, null]);
    if (changes.length > 0) {
      await this.record(changes, tsUs);
    }
    this.snapshot = next;
    this.etag = headerValue(res.headers, 'etag');
    return changes.length;
  }



  private parse(text: string): Map<string, Value> {
    let rows: string[][];
    try {
      rows = parseCsv(text);
    } catch (err) {
      throw new PollError(`malformed CSV: ${(err as CsvError).message}`);
    }
    const header = rows[0];
    if (!header || header.every((h) => h.trim() === '')) throw new PollError('malformed CSV: no header row');
    const names = header.map((h) => h.trim());
    const idIdx = this.idColumn === undefined ? 0 : names.indexOf(this.idColumn);
    if (idIdx < 0) throw new PollError(`malformed CSV: no column ${JSON.stringify(this.idColumn)} in the header`);
    const seen = new Set<string>();
    for (const n of names) {
      if (n === '') throw new PollError('malformed CSV: empty column name in the header');
      if (seen.has(n)) throw new PollError(`malformed CSV: column ${JSON.stringify(n)} appears twice in the header`);
      seen.add(n);
    }
    const cols = names.map((n) => segment(n));
    const out = new Map<string, Value>();
    for (let r = 1; r < rows.length; r++) {
      const row = rows[r] as string[];
      if (row.length === 1 && row[0] === '') continue; // blank line
      if (row.length !== names.length) throw new PollError(`malformed CSV: line ${r + 1} has ${row.length} fields, the header has ${names.length}`);
      const id = (row[idIdx] as string).trim();
      if (id === '') throw new PollError(`malformed CSV: line ${r + 1} has an empty ${names[idIdx]}`);
      const base = `${this.prefix}/${segment(id)}/`;
      for (let c = 0; c < row.length; c++) {
        if (c === idIdx) continue;
        const path = base + (cols[c] as string);
        if (out.has(path)) throw new PollError(`malformed CSV: line ${r + 1} repeats ${names[idIdx]} ${JSON.stringify(id)}`);
        out.set(path, cellValue(row[c] as string));
      }
    }
    return out;
  }
}

export const csvMatrixSource: SourceFactory = {
  type: 'csv-matrix',
  schema: {
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: {
      ...POLLER_PROPERTIES,
      prefix: { type: 'string', pattern: '^/' },
      id_column: { type: 'string', minLength: 1 },
      snapshot_header: { type: ['string', 'null'] },
    },
  },
  create: (config, ctx) => new CsvMatrixSource(config as unknown as CsvMatrixConfig, ctx),
};
