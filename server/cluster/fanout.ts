/**
 * HTTP from this node to the cluster's shards (undici), for the merged reads
 * (docs/cluster.md, "Merged reads"). Every request carries `scope=local`, so a shard answers for
 * itself only and never fans out again. Each shard gets the same bounded time
 * (SERVER_LIMITS.clusterShardAnswerTimeoutMs for its headers, clusterShardIdleTimeoutMs
 * between body chunks, clusterShardJsonAnswerMs for a whole JSON answer); a shard that is not live, times out or fails is reported missing
 * with its reason, never waited for longer and never left out silently. A shard's own 4xx
 * (the question is wrong, e.g. a bad glob) is the client's error and is answered as such.
 * A merged read whose own client leaves aborts its requests to the shards at once (the
 * request's client-gone signal, server/client-gone.ts, is their `signal`): the shards see
 * their connection closed and stop, and this node's connections to them are free again.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { ERRORS, TapedeckError, type ErrorCode } from '../../protocol/errors.js';
import { SERVER_LIMITS } from '../limits.js';
import { stopIfGone } from '../client-gone.js';
import type { ShardDirectory, ShardInfo } from './directory.js';
import { byShardId, compareShardIds } from './merge-tie.js';

/** The query parameter (and value) that makes a shard answer for itself only. */
export const SCOPE_LOCAL = 'local';

/** Header of a merged answer that lacks shards: `TPD_SHARDS_MISSING: s2 (timed out), s3 (not live)`. */
export const PARTIAL_HEADER = 'tapedeck-partial';

/** Header a shard's local answers carry: `false` when it records nothing (its archive is final). */
export const RECORDING_HEADER = 'tapedeck-recording';

export interface MissingShard {
  shard: string;
  reason: string;
}

/** The `partial` field of a merged JSON answer. */
export interface PartialMarker {
  code: 'TPD_SHARDS_MISSING';
  missing: MissingShard[];
}

/** One shard's answer, with the committed horizon it was made at (Tapedeck-Horizon; null: empty). */
export interface ShardAnswer<T> {
  shard: ShardInfo;
  /** Index of the shard in id order: the tie rule's order. */
  index: number;
  value: T;
  horizonUs: number | null;
  recording: boolean;
}

export interface Fanned<T> {
  answers: Array<ShardAnswer<T>>;
  missing: MissingShard[];
}

/**
 * The connections to a cluster's shards, one pool per directory (so per app): closed with
 * the app (closeShardConnections), so a shard is never left holding this node's sockets.
 */
const agents = new WeakMap<ShardDirectory, Agent>();

export function agentFor(dir: ShardDirectory): Agent {
  let a = agents.get(dir);
  if (!a) {
    a = new Agent({
      connections: SERVER_LIMITS.clusterShardConnectionsMax,
      headersTimeout: SERVER_LIMITS.clusterShardAnswerTimeoutMs,
      bodyTimeout: SERVER_LIMITS.clusterShardIdleTimeoutMs,
    });
    agents.set(dir, a);
  }
  return a;
}

/** The headers every request to a shard carries: the node's credentials, if any. */
export function shardHeaders(dir: ShardDirectory): Record<string, string> {
  return dir.authorization === undefined ? {} : { authorization: dir.authorization };
}

/** Destroys the directory's connections (an app closing); a later request opens new ones. */
export async function closeShardConnections(dir: ShardDirectory): Promise<void> {
  const a = agents.get(dir);
  agents.delete(dir);
  await a?.destroy();
}

/** The shards in id order (the tie rule's order), and those that are not live as missing. */
export async function liveShards(dir: ShardDirectory): Promise<{ live: Array<{ shard: ShardInfo; index: number }>; missing: MissingShard[] }> {
  const all = byShardId(await dir.shards());
  if (all.length === 0) throw new TapedeckError('TPD_CLUSTER_UNAVAILABLE', 'the cluster has no shard registered');
  const live: Array<{ shard: ShardInfo; index: number }> = [];
  const missing: MissingShard[] = [];
  all.forEach((shard, index) => (shard.live ? live.push({ shard, index }) : missing.push({ shard: shard.id, reason: shard.problem ?? 'not live (lease expired or probe failed)' })));
  return { live, missing };
}

/** `path` (with its query string) on `shard`, with scope=local added. */
export function shardUrl(shard: { url: string }, path: string): string {
  return `${shard.url.replace(/\/+$/, '')}${path}${path.includes('?') ? '&' : '?'}scope=${SCOPE_LOCAL}`;
}

/** The query string of `q` (repeated keys for arrays; undefined left out), with a leading `?` when not empty. */
export function queryString(q: Record<string, string | number | readonly string[] | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v as readonly string[]) p.append(k, x);
    else p.append(k, String(v));
  }
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}

/** Why a request to a shard failed, in a few words for the partial marker. */
export function reasonOf(err: unknown): string {
  const e = err as { code?: string; message?: string; name?: string };
  if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.name === 'TimeoutError') return `timed out after ${SERVER_LIMITS.clusterShardAnswerTimeoutMs} ms`;
  if (e.code === 'UND_ERR_BODY_TIMEOUT') return `silent for ${SERVER_LIMITS.clusterShardIdleTimeoutMs} ms mid-answer`;
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ECONNRESET' || e.code === 'UND_ERR_SOCKET') return 'connection lost';
  return (e.code ?? e.message ?? 'failed').slice(0, 120);
}

/** A shard's 4xx error body as the client's error (the same code), else undefined. */
function clientError(status: number, body: string): TapedeckError | undefined {
  if (status < 400 || status >= 500) return undefined;
  try {
    const e = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error;
    // Own keys only: `in` finds Object.prototype's members too (a shard's "constructor" became an error without a status).
    if (typeof e?.code === 'string' && Object.hasOwn(ERRORS, e.code)) {
      return new TapedeckError(e.code as ErrorCode, typeof e.message === 'string' ? e.message : ERRORS[e.code as ErrorCode].meaning);
    }
  } catch {
    // not our error shape: a failing shard, below
  }
  return undefined;
}

/**
 * The Tapedeck-Horizon header's µs (`<RFC 3339> <µs>` or `none`; absent: null), or
 * undefined when it is neither: a shard's header is a peer's, read in linear time (its last
 * word, at most 16 digits) and never taken for a time it does not state exactly.
 */
export function horizonFromHeader(h: string | string[] | undefined): number | null | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined || v === 'none') return null;
  const word = v.slice(v.lastIndexOf(' ') + 1);
  if (!/^[0-9]{1,16}$/.test(word)) return undefined;
  const us = Number(word);
  return Number.isSafeInteger(us) ? us : undefined;
}

/**
 * Runs `read` (a wait on a shard's stream); past `ms`, `cut` is called with the error naming
 * the shard's fault (it destroys the stream, so `read` fails with it).
 */
export async function withinMs<T>(read: () => Promise<T>, ms: number, cut: (err: Error) => void): Promise<T> {
  const timer = setTimeout(() => cut(shardFault(`no whole record within ${SERVER_LIMITS.clusterShardRecordMs} ms`)), Math.max(0, ms));
  try {
    return await read();
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `read` (the wait for a shard stream's next record) within clusterShardRecordMs (withinMs). */
export function recordInTime<T>(read: () => Promise<T>, cut: (err: Error) => void): Promise<T> {
  return withinMs(read, SERVER_LIMITS.clusterShardRecordMs, cut);
}

export interface OpenedStream {
  body: Dispatcher.ResponseData['body'];
  horizonUs: number | null;
  recording: boolean;
}

/** An error that names the shard missing for `why` (its reason, reasonOf). */
export function shardFault(why: string): Error {
  return Object.assign(new Error(why), { code: why });
}

/**
 * Opens a streamed GET on one shard (a POST of `json` when given); resolves once its headers
 * are in. A 4xx in our error shape throws that error (the client's); anything else that
 * fails, a malformed Tapedeck-Horizon included, throws for the caller to name the shard
 * missing (reasonOf).
 */
export async function openShard(dir: ShardDirectory, shard: Pick<ShardInfo, 'url'>, path: string, signal?: AbortSignal, json?: string): Promise<OpenedStream> {
  const res = await request(shardUrl(shard, path), {
    dispatcher: agentFor(dir),
    method: json === undefined ? 'GET' : 'POST',
    headers: json === undefined ? shardHeaders(dir) : { ...shardHeaders(dir), 'content-type': 'application/json' },
    ...(json === undefined ? {} : { body: json }),
    ...(signal ? { signal } : {}),
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text().catch(() => '');
    throw clientError(res.statusCode, text) ?? shardFault(`HTTP ${res.statusCode}`);
  }
  const horizonUs = horizonFromHeader(res.headers['tapedeck-horizon']);
  if (horizonUs === undefined) {
    res.body.on('error', () => undefined).destroy();
    throw shardFault(`malformed Tapedeck-Horizon from ${path.split('?')[0] as string}`);
  }
  return { body: res.body, horizonUs, recording: res.headers[RECORDING_HEADER] !== 'false' };
}

function isClientError(err: unknown): boolean {
  return err instanceof TapedeckError && err.status >= 400 && err.status < 500;
}

/** Bytes of shards' JSON answers held by this process while they are read, every request together. */
let answerBytesHeld = 0;

/**
 * Reads a whole JSON answer, at most `bytesMax`, and while all the answers being read hold
 * at most clusterShardAnswersHeldBytesMax: many requests each asking shards that answer
 * large bodies cannot together hold more memory than that.
 */
async function readJson(body: OpenedStream['body'], bytesMax: number): Promise<unknown> {
  let bytes = 0;
  const parts: Buffer[] = [];
  try {
    for await (const chunk of body) {
      const n = (chunk as Buffer).length;
      bytes += n;
      answerBytesHeld += n;
      if (bytes > bytesMax) {
        body.destroy();
        throw shardFault(`answer over ${bytesMax} bytes`);
      }
      if (answerBytesHeld > SERVER_LIMITS.clusterShardAnswersHeldBytesMax) {
        body.destroy();
        throw shardFault(`answers being read hold over ${SERVER_LIMITS.clusterShardAnswersHeldBytesMax} bytes`);
      }
      parts.push(chunk as Buffer);
    }
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
  } finally {
    answerBytesHeld -= bytes;
  }
}

export interface ShardJsonOptions {
  /** A POST of this JSON text instead of a GET. */
  json?: string;
  /** The whole answer's time (headers and body); default clusterShardJsonAnswerMs. */
  timeoutMs?: number;
  /** The answer's largest size; default clusterShardAnswerBytesMax. */
  bytesMax?: number;
  /** The merged read's client leaving (server/client-gone.ts): aborts the request, which then throws the signal's reason. */
  signal?: AbortSignal | undefined;
}

/**
 * One shard's whole JSON answer to `path`: within the time (a shard that dribbles its body
 * is not waited for past it), at most the size, and of the shape `valid` takes (a shard is
 * a peer, not trusted with the merge). Anything else throws for the caller to name the
 * shard missing (reasonOf); a shard's 4xx in our error shape is the client's error.
 */
export async function shardJson<T>(dir: ShardDirectory, shard: Pick<ShardInfo, 'url'>, path: string, valid: (v: unknown) => v is T, o: ShardJsonOptions = {}): Promise<{ value: T; horizonUs: number | null; recording: boolean }> {
  const timeoutMs = o.timeoutMs ?? SERVER_LIMITS.clusterShardJsonAnswerMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const s = await openShard(dir, shard, path, o.signal ? AbortSignal.any([timeout, o.signal]) : timeout, o.json);
    const value = await readJson(s.body, o.bytesMax ?? SERVER_LIMITS.clusterShardAnswerBytesMax);
    if (!valid(value)) throw shardFault(`malformed answer to ${path.split('?')[0] as string}`);
    return { value, horizonUs: s.horizonUs, recording: s.recording };
  } catch (err) {
    if (o.signal?.aborted === true) throw o.signal.reason;
    if (timeout.aborted && !isClientError(err)) throw shardFault(`no whole answer within ${timeoutMs} ms`);
    throw err;
  }
}

/**
 * Asks every live shard `path` (JSON) at once; answers come in shard-id order, the rest is
 * missing with a reason (also an answer `valid` refuses). None answering is
 * TPD_CLUSTER_UNAVAILABLE (503). `signal` (the merged read's client leaving) aborts every
 * request to the shards at once and throws TPD_CANCELED, counted (server/client-gone.ts).
 */
export async function fanoutJson<T>(dir: ShardDirectory, path: string, valid: (v: unknown) => v is T, signal?: AbortSignal): Promise<Fanned<T>> {
  stopIfGone(signal);
  const { live, missing } = await liveShards(dir);
  stopIfGone(signal);
  const settled = await Promise.allSettled(live.map(async ({ shard, index }) => ({ shard, index, ...(await shardJson(dir, shard, path, valid, { signal })) })));
  stopIfGone(signal);
  const answers: Array<ShardAnswer<T>> = [];
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') answers.push(r.value);
    else if (isClientError(r.reason)) throw r.reason;
    else missing.push({ shard: (live[i] as { shard: ShardInfo }).shard.id, reason: reasonOf(r.reason) });
  });
  if (answers.length === 0) throw unavailable(missing);
  return { answers, missing: sortMissing(missing) };
}

export function unavailable(missing: readonly MissingShard[]): TapedeckError {
  return new TapedeckError('TPD_CLUSTER_UNAVAILABLE', `no shard answered: ${missingText(missing)}`);
}

export function sortMissing(missing: MissingShard[]): MissingShard[] {
  return missing.sort((a, b) => compareShardIds(a.shard, b.shard));
}

function missingText(missing: readonly MissingShard[]): string {
  return missing.map((m) => `${m.shard} (${m.reason})`).join(', ');
}

/** The `partial` field, or undefined when no shard is missing. */
export function partialOf(missing: readonly MissingShard[]): PartialMarker | undefined {
  return missing.length === 0 ? undefined : { code: 'TPD_SHARDS_MISSING', missing: [...missing] };
}

/**
 * The Tapedeck-Partial header's value (ASCII: other characters become "?"), at most
 * clusterPartialHeaderCharsMax characters: past it the shards not named are counted (the
 * body names every one), so many missing shards or long ids never make a header a client
 * cannot read (HTTP clients refuse headers past 8 to 16 KiB).
 */
export function partialHeader(missing: readonly MissingShard[]): string {
  const max = SERVER_LIMITS.clusterPartialHeaderCharsMax;
  let out = 'TPD_SHARDS_MISSING: ';
  for (let i = 0; i < missing.length; i++) {
    const m = missing[i] as MissingShard;
    const item = `${i > 0 ? ', ' : ''}${m.shard} (${m.reason})`.replace(/[^\x20-\x7e]/g, '?');
    const more = `, and ${missing.length - i} more (the body names every one)`;
    if (out.length + item.length + (i < missing.length - 1 ? more.length : 0) > max) return out + (i > 0 ? more : `${missing.length} shards (the body names every one)`);
    out += item;
  }
  return out;
}
