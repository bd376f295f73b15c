/**
 * How every route that takes a JSON body reads it (sessions, workspace, ...; ingest reads its
 * own, the same way, in server/routes/ingest.ts): bytes that are not UTF-8, a key twice in
 * one object (`{"start": A, "start": B}` was taken as B), an integer literal a double cannot
 * hold and a literal past the largest double are refused with 400 naming where, instead of
 * being altered in silence by JSON.parse (protocol/value-json-text.ts parseJsonText); a
 * charset other than UTF-8 is refused (415).
 */
import type { FastifyInstance } from 'fastify';
import { TapedeckError, isTapedeckError } from '../../protocol/errors.js';
import { decodeUtf8 } from '../../protocol/value.js';
import { parseJsonText } from '../../protocol/value-json-text.js';

/**
 * Refuses a body whose Content-Type names a charset other than UTF-8 (415): its bytes would
 * be read as UTF-8 all the same, and latin1 bytes that happen to be valid UTF-8 would be
 * recorded as other characters in silence.
 */
export function checkUtf8Charset(contentType: string | undefined): void {
  const m = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? '');
  if (m && !/^utf-?8$/i.test(m[1] as string)) {
    throw new TapedeckError('TPD_UNSUPPORTED_MEDIA_TYPE', `charset ${JSON.stringify(m[1])} is not supported: bodies are UTF-8 (say charset=utf-8 or nothing)`);
  }
}

/**
 * The text less one leading U+FEFF: a byte order mark before the JSON text is no part of it
 * (RFC 8259 8.1 lets a reader ignore it), and Fastify's own JSON reader, which this one
 * replaced, ignored it. Anywhere else it stays (in a string it is part of the value).
 */
function withoutLeadingBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export function strictJsonBodies(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      checkUtf8Charset(req.headers['content-type']);
      done(null, parseJsonText(withoutLeadingBom(decodeUtf8(body as Buffer, 'request body'))));
    } catch (err) {
      done(isTapedeckError(err) ? err : new TapedeckError('TPD_BAD_REQUEST', `the body is not JSON: ${(err as Error).message}`));
    }
  });
}
