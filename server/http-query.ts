/**
 * Query strings and form bodies: refused when a %XX escape does not decode (not hex, cut
 * short, not UTF-8), never read as literal text or U+FFFD (Node's querystring and
 * URLSearchParams keep or replace such escapes in silence; Go's url.ParseQuery, which
 * Prometheus reads its parameters with, refuses them too).
 */

/** Whether every %XX escape of a query string or form body decodes, as UTF-8. */
export function percentEscapesDecode(text: string): boolean {
  if (!text.includes('%')) return true;
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}
