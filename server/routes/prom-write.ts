/**
 * POST /api/v1/write: Prometheus remote write 1.0 into the config's `remote_write` source
 * (server/sources/remote-write.ts; docs/prometheus.md). Status as Prometheus expects it:
 * - 204 once the request is recorded (`?ack=durable`, the default, once it is in a
 *   committed, fsynced flush; `?ack=memory` once it is in the archive writer);
 * - 400 for a body a retry cannot fix (TPD_BAD_REMOTE_WRITE, TPD_REMOTE_WRITE_OUT_OF_ORDER):
 *   Prometheus drops it;
 * - 503 (backpressure, closed archive) and 507 (full disk) with Retry-After: Prometheus
 *   retries, and the retry records only what the first try did not;
 * - 404 TPD_NO_REMOTE_WRITE_SOURCE when no remote_write source is configured.
 * - 421 TPD_NOT_OWNER in a cluster when a series' path belongs to another shard
 *   (docs/cluster.md): nothing of the request is recorded; the body names the owner.
 * Never a 2xx for samples that were not recorded.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import type { Archive } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import { clientMessage, parseAckLevel, retryAfterS } from './ingest-answers.js';
import { seriesPath, uncompress, type ArchiveGate, type RemoteWriteSource } from '../sources/remote-write.js';
import { archiveGate } from '../sources/remote-write-gate.js';
import { decodeLabels, decodeWriteRequest } from '../../protocol/prompb/write-request.js';
import { ownershipCheckOf } from '../cluster/source-ownership.js';
import type { OwnershipCheck } from '../sources/push.js';
import { ERROR_PROPERTY } from './ingest.js';
import type { Source } from '../sources/source.js';

export interface PromWriteRoutesOptions {
  sources: readonly Source[];
  archive: Archive;
}

const QUERYSTRING = { type: 'object', additionalProperties: false, properties: { source: { type: 'string', minLength: 1 }, ack: { type: 'string' } } } as const;

function gateOf(archive: Archive): ArchiveGate {
  const writer = archive.writer;
  if (!writer) throw new TapedeckError('TPD_ARCHIVE_READONLY', 'the archive is read-only; remote write needs a writable one');
  return archiveGate(archive, writer);
}

/**
 * Refuses a request with a series another shard owns, before anything is recorded. A body
 * that does not decode is left to the source, which refuses it with its own 400.
 */
function checkOwnership(check: OwnershipCheck, body: Buffer): void {
  let paths: string[];
  try {
    const view = decodeWriteRequest(uncompress(body), { samplesMax: SERVER_LIMITS.remoteWriteSamplesMax, labelsPerSeriesMax: SERVER_LIMITS.remoteWriteLabelsPerSeriesMax });
    paths = view.series.map((s) => seriesPath(decodeLabels(view.bytes, s.labelSpans)));
  } catch {
    return;
  }
  check.check(paths);
}

function sendError(reply: FastifyReply, err: TapedeckError): FastifyReply {
  const after = retryAfterS(err, SERVER_LIMITS.remoteWriteBackpressureRetryAfterS);
  if (after !== undefined) void reply.header('retry-after', String(after));
  if (err.status >= 500) reply.log.error({ code: err.code, err: err.cause ?? err }, 'remote write stopped by the archive');
  // I/O and internal failures may name paths: they give only their meaning.
  const message = clientMessage(err);
  const owner = err.code === 'TPD_NOT_OWNER' && err.details ? { owner: { shard: err.details.owner, url: err.details.owner_url }, owners: err.details.owners } : {};
  return reply.status(err.status).send({ error: { code: err.code, message, ...owner } });
}

export const promWriteRoutes: FastifyPluginAsync<PromWriteRoutesOptions> = async (app, opts) => {
  const writers = new Map(opts.sources.filter((s) => s.type === 'remote_write').map((s) => [s.name, s as RemoteWriteSource]));
  const pick = (name: string | undefined): RemoteWriteSource => {
    const w = name === undefined ? writers.values().next().value : writers.get(name);
    if (!w) {
      throw new TapedeckError('TPD_NO_REMOTE_WRITE_SOURCE', name === undefined ? 'no source of type "remote_write" is configured' : `no remote_write source named ${JSON.stringify(name)}`);
    }
    return w;
  };

  // Prometheus sends application/x-protobuf with Content-Encoding: snappy; the snappy block
  // is the body itself (not HTTP compression), so it is read raw and decoded by the source.
  app.addContentTypeParser(['application/x-protobuf', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: SERVER_LIMITS.remoteWriteBodyBytesMax }, (_req, body, done) => {
    done(null, body);
  });

  app.post<{ Body: Buffer; Querystring: { source?: string; ack?: string } }>('/api/v1/write', {
    bodyLimit: SERVER_LIMITS.remoteWriteBodyBytesMax,
    schema: {
      querystring: QUERYSTRING,
      // The error shape of push ingest: `owner` and `owners` on 421 TPD_NOT_OWNER.
      response: { 204: { type: 'null' }, '4xx': { type: 'object', required: ['error'], properties: { error: ERROR_PROPERTY } }, '5xx': { type: 'object', required: ['error'], properties: { error: ERROR_PROPERTY } } },
    },
  }, async (req, reply) => {
    const source = pick(req.query.source);
    const ack = parseAckLevel(req.query.ack, source.defaultAck);
    // JSON and text have parsers of their own; only a raw body is a snappy block.
    if (!Buffer.isBuffer(req.body)) throw new TapedeckError('TPD_UNSUPPORTED_MEDIA_TYPE', 'remote write takes a snappy-compressed WriteRequest as application/x-protobuf');
    try {
      const ownership = ownershipCheckOf(source);
      if (ownership) checkOwnership(ownership, req.body);
      await source.write(req.body, gateOf(opts.archive), ack);
    } catch (err) {
      if (!isTapedeckError(err)) throw err;
      return sendError(reply, err);
    }
    return reply.status(204).send();
  });
};
