/**
 * A request's client leaving: an AbortSignal per request, aborted when the connection closes
 * before the answer was sent (the ServerResponse closes unfinished). Long answers (PromQL
 * evaluations, the whole JSON answers of /state, /diff and /paths, and their queue) check it
 * at each slice and stop there, so a client that asks something heavy and hangs up holds no
 * place and no CPU past its next slice (docs/prometheus.md, "Query API"; docs/recording.md).
 * Built once per request, on first use; server/routes/promql.ts, answer-gate.ts, queries.ts
 * and diff.ts use it.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { TapedeckError } from '../protocol/errors.js';

const signals = new WeakMap<ServerResponse, AbortSignal>();

/**
 * Requests stopped because their client left, since the process started, by where they
 * were: `waiting` for a place (never started), `running` (stopped at a slice), `session` (a
 * playback session's read: its stream, the request that asked it or the session itself
 * gone, server/sessions/read-stops.ts). The metric tapedeck_requests_canceled_total reads them.
 */
export const CANCELED = { waiting: 0, running: 0, session: 0 };

/** The error a request stops with once its client has left (499 TPD_CANCELED; nobody reads it). */
export function clientGoneError(): TapedeckError {
  return new TapedeckError('TPD_CANCELED', 'the client closed its connection before the answer was ready');
}

/** The request's signal: aborted (reason: clientGoneError()) once its client has left without the whole answer. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const res = reply.raw;
  const known = signals.get(res);
  if (known) return known;
  const ac = new AbortController();
  signals.set(res, ac.signal);
  const left = (): void => {
    if (!res.writableFinished) ac.abort(clientGoneError());
  };
  if (res.destroyed || reply.request.raw.socket?.destroyed === true) left();
  else res.once('close', left);
  return ac.signal;
}

/** Signals whose request was counted `running` already: a request is counted once, whichever check stopped it. */
const counted = new WeakSet<AbortSignal>();

/** Counts the request of `signal` as stopped while `running`, once. */
export function countGone(signal: AbortSignal): void {
  if (counted.has(signal)) return;
  counted.add(signal);
  CANCELED.running++;
}

/** Throws the signal's reason once it is aborted (a check between two slices of a long answer), counted as `running`. */
export function stopIfGone(signal: AbortSignal | undefined): void {
  if (signal?.aborted !== true) return;
  countGone(signal);
  throw signal.reason;
}

/**
 * True when `err` is the signal's own reason: a read that stopped for the client leaving
 * (storage throws the reason it was given, storage/read-signal.ts); counted once.
 */
export function stoppedByGone(signal: AbortSignal | undefined, err: unknown): boolean {
  if (signal?.aborted !== true || err !== signal.reason) return false;
  countGone(signal);
  return true;
}

/** Runs `read` (whose storage reads carry `signal`); when it stopped for the client leaving, it is counted once (stoppedByGone) and rethrown. */
export async function countedIfGone<T>(signal: AbortSignal, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    stoppedByGone(signal, err);
    throw err;
  }
}
