/**
 * GET /api/v1/diff?start=&end=&glob=   what changed between two times (docs/recording.md,
 * "What changed"). The state at `start` comes from one cursor.state() (it reads back only
 * to the last image); the changes come from one forward pass over (start, end]
 * (server/diff-pass.ts), folded by server/diff.ts. Committed data only: `end` is clamped
 * to the horizon taken when the request arrived, which the answer states like the other
 * queries (Tapedeck-Horizon).
 * `glob` may be repeated (default every path); malformed globs are 400 TPD_BAD_GLOB,
 * malformed times or end before start 400 TPD_BAD_ARGUMENT, a pass past
 * diffTimeBudgetMs 503 TPD_QUERY_TIMEOUT, an answer past jsonAnswerCharsMax 422
 * TPD_ANSWER_TOO_LARGE; a client that leaves stops the pass at its next slice (499
 * TPD_CANCELED, server/client-gone.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { TapedeckError } from '../../protocol/errors.js';
import { formatTs, parseWallTime } from '../../protocol/time.js';
import { readsUntil, wallClockUs, type Archive } from '../../storage/index.js';
import { DiffFold, type DiffAnswer } from '../diff.js';
import { foldRange } from '../diff-pass.js';
import { HORIZON_HEADER, horizonHeader, horizonOf } from '../horizon.js';
import { SERVER_LIMITS } from '../limits.js';
import { noMatchWarning } from '../../protocol/glob.js';
import { checkAnswerChars, coverInSlices, globList } from './queries.js';
import { AnswerGate } from './answer-gate.js';
import { stopIfGone } from '../client-gone.js';

const GLOBS = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const TIME = { type: 'string', minLength: 1, maxLength: 64 };
const WHEN = { type: 'object', required: ['ts', 'time'], properties: { ts: { type: 'integer' }, time: { type: 'string' } } };
const VALUE = {}; // any JSON: the one value form (docs/values.md)
const PATH_DIFF = {
  type: 'object',
  required: ['path', 'changes', 'updates', 'firstTs', 'firstTime', 'lastTs', 'lastTime'],
  properties: {
    path: { type: 'string' },
    start: VALUE,
    end: VALUE,
    changes: { type: 'integer' },
    updates: { type: 'integer' },
    firstTs: { type: 'integer' },
    firstTime: { type: 'string' },
    lastTs: { type: 'integer' },
    lastTime: { type: 'string' },
    min: VALUE,
    max: VALUE,
  },
};
const COUNT = { type: 'integer' };
const ERROR_RESPONSE = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

interface DiffQuery {
  start?: string;
  end?: string;
  glob?: string | string[];
}

export interface DiffRoutesOptions {
  /** Builds of whole JSON answers at once, shared with /api/v1/state (default: a gate of its own). */
  answers?: AnswerGate | undefined;
}

export const diffRoutes: FastifyPluginAsync<DiffRoutesOptions> = async (app, opts) => {
  const answers = opts.answers ?? new AnswerGate();
  app.get<{ Querystring: DiffQuery }>('/api/v1/diff', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { start: TIME, end: TIME, glob: GLOBS } },
      response: {
        200: {
          type: 'object',
          required: ['start', 'end', 'horizon', 'paths', 'appeared', 'disappeared', 'counts', 'truncated'],
          properties: {
            start: WHEN,
            end: WHEN,
            horizon: { type: ['integer', 'null'] },
            paths: { type: 'array', items: PATH_DIFF },
            appeared: { type: 'array', items: { type: 'string' } },
            disappeared: { type: 'array', items: { type: 'string' } },
            counts: { type: 'object', required: ['changed', 'appeared', 'disappeared', 'unchanged'], properties: { changed: COUNT, appeared: COUNT, disappeared: COUNT, unchanged: COUNT } },
            truncated: { type: 'boolean' },
            warning: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
          },
        },
        '4xx': ERROR_RESPONSE,
        '5xx': ERROR_RESPONSE,
      },
    },
  }, async (req, reply) => {
    // The horizon when the request arrived: nothing newer is read, so asking again gives the same answer.
    const horizonUs = horizonOf(app.archive.lastTs);
    reply.header(HORIZON_HEADER, horizonHeader(horizonUs));
    const now = wallClockUs();
    const startUs = req.query.start === undefined ? 0 : parseWallTime(req.query.start, now, 'start');
    const askedEndUs = req.query.end === undefined ? Number.MAX_SAFE_INTEGER : parseWallTime(req.query.end, now, 'end');
    const globs = globList(req.query.glob);
    if (askedEndUs < startUs) throw new TapedeckError('TPD_BAD_ARGUMENT', `"end" (${formatTs(askedEndUs)}) is before "start" (${formatTs(startUs)})`);
    const endUs = Math.min(askedEndUs, horizonUs ?? 0);
    return answers.run('/diff', reply, async (signal) => {
      const { answer, any } = await diffRangeMatched(app.archive, globs, startUs, endUs, signal);
      const warning = req.query.glob === undefined || any ? undefined : noMatchWarning(globs);
      reply.type('application/json; charset=utf-8');
      // By hand, like /state: a schema serializer walking open-ended values costs more and
      // would need every value shape declared. Its lists are written item by item, counted
      // against jsonAnswerCharsMax: values make an answer of any size.
      const budget = { chars: 0 };
      const paths = jsonList(answer.paths, budget);
      const appeared = jsonList(answer.appeared, budget);
      const disappeared = jsonList(answer.disappeared, budget);
      const when = (us: number): string => JSON.stringify({ ts: us, time: formatTs(us) });
      return `{"start":${when(startUs)},"end":${when(Math.max(endUs, startUs))},"horizon":${horizonUs},"paths":${paths},"appeared":${appeared},"disappeared":${disappeared},"counts":${JSON.stringify(answer.counts)},"truncated":${answer.truncated}${warning ? `,"warning":${JSON.stringify(warning)}` : ''}}`;
    });
  });
};

/** JSON text of a list of the answer, its characters added to `budget` (TPD_ANSWER_TOO_LARGE past jsonAnswerCharsMax). */
function jsonList(items: readonly unknown[], budget: { chars: number }): string {
  const texts: string[] = [];
  for (const item of items) {
    let text: string;
    try {
      text = JSON.stringify(item);
    } catch (err) {
      // One item past V8's longest string (a start and an end of hundreds of MB as JSON).
      if (err instanceof RangeError) checkAnswerChars(Infinity, '/diff');
      throw err;
    }
    budget.chars += text.length + 1;
    checkAnswerChars(budget.chars, '/diff');
    texts.push(text);
  }
  return `[${texts.join(',')}]`;
}

/**
 * The state at start (one read back to the last image), then the forward pass. A glob list
 * holding "/**" is no filter: the pass then checks no path against a glob.
 */
export async function diffRange(archive: Archive, globs: string[], startUs: number, endUs: number): Promise<DiffAnswer> {
  return (await diffRangeMatched(archive, globs, startUs, endUs)).answer;
}

/** diffRange, and whether the globs select any recorded path. `signal`: the client leaving stops it at its next slice (TPD_CANCELED). */
async function diffRangeMatched(archive: Archive, globs: string[], startUs: number, endUs: number, signal?: AbortSignal): Promise<{ answer: DiffAnswer; any: boolean }> {
  // The state's walk back to an image and its waits for cold files stop when the client leaves.
  const at = archive.cursor({ filter: globs, onFetchWait: readsUntil(undefined, signal) });
  // The state read and the pass ask the filter of path ids in one piece: decided here, in slices.
  await coverInSlices(at, archive.paths.length, signal);
  await at.seek({ ts: startUs });
  stopIfGone(signal);
  const fold = new DiffFold(await at.stateById(), archive.paths.length);
  stopIfGone(signal);
  const keep = globs.includes('/**') ? null : (id: number): boolean => at.matches(id);
  if (endUs > startUs) await foldRange(archive, keep, startUs, endUs, fold, signal);
  const answer = fold.answer((id) => archive.paths[id] as string, SERVER_LIMITS.diffPathsListedMax);
  // Whether the globs select any recorded path (those recorded meanwhile decided now).
  return { answer, any: await coverInSlices(at, archive.paths.length, signal) };
}
