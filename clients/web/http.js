// Requests to the Tapedeck API. When the server has tokens configured, the page takes one
// from ?access_token= (kept for the tab in sessionStorage): fetches send it as a bearer
// header, the WebSocket (which cannot set headers in a browser) as ?access_token=.
const TOKEN_KEY = 'tapedeck.token';
let token = null;

export function initToken(params) {
  const given = params.get('access_token');
  if (given) sessionStorage.setItem(TOKEN_KEY, given);
  token = given || sessionStorage.getItem(TOKEN_KEY);
}

export function apiFetch(url, init = {}) {
  if (!token) return fetch(url, init);
  return fetch(url, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } });
}

/** ws(s):// URL for an http(s) path, with the token when there is one. */
export function wsUrl(path) {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) u.searchParams.set('access_token', token);
  return u.href;
}
