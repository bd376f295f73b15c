/**
 * The workspace routes (docs/web-player.md, "Bookmarks and layouts"): bookmarks and named
 * layouts kept beside the archive by server/workspace/store.ts.
 *
 *   GET    /api/v1/bookmarks               read    every bookmark, in time order
 *   POST   /api/v1/bookmarks               ingest  { ts, end?, note?, url? } -> 201 the bookmark
 *   DELETE /api/v1/bookmarks/:id           ingest  204, or 404 TPD_NOT_FOUND
 *   GET    /api/v1/layouts                 read    names, times and sizes
 *   GET    /api/v1/layouts/:name           read    { name, layout, ... } or 404
 *   PUT    /api/v1/layouts/:name           ingest  { layout } -> 201 created / 200 replaced
 *   DELETE /api/v1/layouts/:name           ingest  204, or 404
 *
 * Writing needs `ingest` (or `admin`, which implies it): the people who feed and run the
 * recorder annotate it; a `read` token looks. Times are epoch µs or any wall time of the
 * time grammar (protocol/time.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { TapedeckError } from '../../protocol/errors.js';
import { formatTs, parseWallTime } from '../../protocol/time.js';
import { TS_MAX_US } from '../../protocol/value.js';
import { wallClockUs } from '../../storage/index.js';
import { SERVER_LIMITS } from '../limits.js';
import { WorkspaceStore, type Bookmark, type Layout } from '../workspace/store.js';

const TIME_IN = Type.Union([Type.Integer({ minimum: 0, maximum: TS_MAX_US }), Type.String({ minLength: 1, maxLength: 64 })]);
const BOOKMARK_IN = Type.Object({
  ts: TIME_IN,
  end: Type.Optional(TIME_IN),
  // Lengths in characters here; the byte limits are checked by the store (a character is up to 4 bytes).
  note: Type.Optional(Type.String({ maxLength: SERVER_LIMITS.bookmarkNoteBytesMax })),
  url: Type.Optional(Type.String({ maxLength: SERVER_LIMITS.bookmarkUrlBytesMax })),
}, { additionalProperties: false });
const BOOKMARK_OUT = Type.Object({
  id: Type.String(),
  ts: Type.Integer(),
  time: Type.String(),
  end: Type.Optional(Type.Integer()),
  endTime: Type.Optional(Type.String()),
  note: Type.String(),
  createdTs: Type.Integer(),
  created: Type.String(),
  url: Type.String(),
});
const ID_PARAMS = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
/** Letters and digits of any script, then also space . _ - ( ): safe in a URL segment once encoded, and shown as typed. */
const NAME = Type.String({ pattern: '^[\\p{L}\\p{N}][\\p{L}\\p{N} ._()-]{0,63}$' });
const NAME_PARAMS = Type.Object({ name: NAME });
const LAYOUT_IN = Type.Object({ layout: Type.Object({}, { additionalProperties: true }) }, { additionalProperties: false });
const LAYOUT_META = Type.Object({ name: Type.String(), updatedTs: Type.Integer(), updated: Type.String() });
const LAYOUT_OUT = Type.Object({ name: Type.String(), updatedTs: Type.Integer(), updated: Type.String(), layout: Type.Object({}, { additionalProperties: true }) });
const LAYOUT_ROW = Type.Object({ name: Type.String(), updatedTs: Type.Integer(), updated: Type.String(), bytes: Type.Integer() });

const WRITE = { scope: 'ingest' as const };
/** The largest layout body the transport takes: the layout limit plus room for the envelope; the store checks the exact size. */
const LAYOUT_BODY_BYTES_MAX = SERVER_LIMITS.workspaceLayoutBytesMax + 1024;

function bookmarkOut(b: Bookmark): Static<typeof BOOKMARK_OUT> {
  return { ...b, time: formatTs(b.ts), ...(b.end !== undefined ? { endTime: formatTs(b.end) } : {}), created: formatTs(b.createdTs) };
}

function layoutMeta(l: Layout): Static<typeof LAYOUT_META> {
  return { name: l.name, updatedTs: l.updatedTs, updated: formatTs(l.updatedTs) };
}

function timeIn(v: number | string, nowUs: number, what: string): number {
  return typeof v === 'number' ? v : parseWallTime(v, nowUs, what);
}

export const workspaceRoutes: FastifyPluginAsync = async (app) => {
  const store = await WorkspaceStore.open(app.archive.dir, app.log);

  app.get('/api/v1/bookmarks', {
    schema: { response: { 200: Type.Object({ bookmarks: Type.Array(BOOKMARK_OUT) }) } },
  }, async () => ({ bookmarks: store.listBookmarks().map(bookmarkOut) }));

  app.post<{ Body: Static<typeof BOOKMARK_IN> }>('/api/v1/bookmarks', {
    config: WRITE,
    schema: { body: BOOKMARK_IN, response: { 201: BOOKMARK_OUT } },
  }, async (req, reply) => {
    const now = wallClockUs();
    const ts = timeIn(req.body.ts, now, 'ts');
    const end = req.body.end === undefined ? undefined : timeIn(req.body.end, now, 'end');
    const made = await store.addBookmark({ ts, ...(end !== undefined ? { end } : {}), note: req.body.note ?? '', url: req.body.url ?? '' }, now);
    return reply.status(201).send(bookmarkOut(made));
  });

  app.delete<{ Params: Static<typeof ID_PARAMS> }>('/api/v1/bookmarks/:id', {
    config: WRITE,
    schema: { params: ID_PARAMS, response: { 204: Type.Null() } },
  }, async (req, reply) => {
    if (!(await store.deleteBookmark(req.params.id))) throw new TapedeckError('TPD_NOT_FOUND', `no bookmark ${req.params.id}`);
    return reply.status(204).send();
  });

  app.get('/api/v1/layouts', {
    schema: { response: { 200: Type.Object({ layouts: Type.Array(LAYOUT_ROW) }) } },
  }, async () => ({
    layouts: store.listLayouts().map((l) => ({ ...layoutMeta(l), bytes: Buffer.byteLength(JSON.stringify(l.layout)) })),
  }));

  app.get<{ Params: Static<typeof NAME_PARAMS> }>('/api/v1/layouts/:name', {
    schema: { params: NAME_PARAMS, response: { 200: LAYOUT_OUT } },
  }, async (req) => {
    const l = store.getLayout(req.params.name);
    if (!l) throw new TapedeckError('TPD_NOT_FOUND', `no layout named ${JSON.stringify(req.params.name)}`);
    return { ...layoutMeta(l), layout: l.layout };
  });

  app.put<{ Params: Static<typeof NAME_PARAMS>; Body: Static<typeof LAYOUT_IN> }>('/api/v1/layouts/:name', {
    config: WRITE,
    bodyLimit: LAYOUT_BODY_BYTES_MAX,
    schema: { params: NAME_PARAMS, body: LAYOUT_IN, response: { 200: LAYOUT_META, 201: LAYOUT_META } },
  }, async (req, reply) => {
    const created = await store.putLayout(req.params.name, req.body.layout, wallClockUs());
    return reply.status(created ? 201 : 200).send(layoutMeta(store.getLayout(req.params.name)!));
  });

  app.delete<{ Params: Static<typeof NAME_PARAMS> }>('/api/v1/layouts/:name', {
    config: WRITE,
    schema: { params: NAME_PARAMS, response: { 204: Type.Null() } },
  }, async (req, reply) => {
    if (!(await store.deleteLayout(req.params.name))) throw new TapedeckError('TPD_NOT_FOUND', `no layout named ${JSON.stringify(req.params.name)}`);
    return reply.status(204).send();
  });
};
