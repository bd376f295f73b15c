// One playback session over REST + WebSocket (docs/playback.md), for the browser.
// Emits 'frame' (detail: a server frame) and 'status' (detail: { state, ... }).
// Reconnect opens the stream again for the same session id (the server keeps a session 30 s
// without a client and answers a fresh state frame at the same position); when the session
// is gone, a new one is created at the last known position with the last known controls.

import { apiFetch, wsUrl } from './http.js';
import { CLOSE_CODES } from './vendor/protocol.js';
import { rfc3339Us } from './time.js';

/** Controls as sent: times given as epoch µs (numbers) written as RFC 3339 µs text (rfc3339Us says why). */
function wireControls(set) {
  const out = { ...set };
  for (const k of ['start', 'end', 'pos']) if (Number.isInteger(out[k]) && out[k] >= 0) out[k] = rfc3339Us(out[k]);
  return out;
}

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;
const STORAGE_KEY = 'tapedeck.sessionId';

export class PlayerSession extends EventTarget {
  constructor(base, { filter } = {}) {
    super();
    this.base = base.replace(/\/$/, '');
    this.filter = filter;
    this.id = null;
    this.ws = null;
    this.controls = null;
    this.posUs = null;
    this.pending = null;      // controls set while the socket is not open, merged
    this.backoffMs = RECONNECT_MIN_MS;
    this.timer = null;
    this.closed = false;
    this.state = 'connecting';
  }

  /** Resumes the session this tab had (reload) or creates one with `initial` controls. */
  async start(initial, { resume = true } = {}) {
    const old = resume ? sessionStorage.getItem(STORAGE_KEY) : null;
    if (old) {
      const res = await apiFetch(`${this.base}/api/v1/sessions/${encodeURIComponent(old)}`).catch(() => null);
      if (res && res.ok) {
        const s = await res.json();
        this.id = s.id;
        this.controls = s.controls;
        this.posUs = s.controls.posUs;
      }
    }
    if (!this.id) await this.create(initial);
    this.connect();
  }

  async create(controls) {
    const body = wireControls(controls);
    if (this.filter && this.filter.length > 0) body.filter = this.filter;
    const res = await apiFetch(`${this.base}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = answer.error ?? { code: `HTTP_${res.status}`, message: res.statusText };
      this.setStatus('error', e);
      throw Object.assign(new Error(e.message), { code: e.code });
    }
    this.id = answer.id;
    this.controls = answer.controls;
    sessionStorage.setItem(STORAGE_KEY, answer.id);
  }

  streamUrl() {
    return wsUrl(`${this.base}/api/v1/sessions/${encodeURIComponent(this.id)}/stream?coalesce=true`);
  }

  connect() {
    if (this.closed) return;
    this.setStatus(this.ws ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(this.streamUrl());
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.backoffMs = RECONNECT_MIN_MS;
      this.setStatus('open');
      if (this.pending) {
        const set = this.pending;
        this.pending = null;
        this.send(set);
      }
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame.type === 'controls') {
        this.controls = frame.controls;
        if (frame.controls.posUs !== null) this.posUs = frame.controls.posUs;
      } else if (frame.type === 'state') {
        if (frame.ts !== null) this.posUs = frame.ts;
      } else if (frame.type === 'batch') {
        this.posUs = frame.ts;
      } else if (frame.type === 'batches' && frame.batches.length > 0) {
        this.posUs = frame.batches[frame.batches.length - 1].ts;
      }
      this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (this.closed) return this.setStatus('closed');
      if (ev.code === CLOSE_CODES.replaced) {
        // Another connection took this session over (another tab with the same session).
        return this.setStatus('replaced', { code: 'TPD_REPLACED', message: ev.reason || 'replaced by a newer connection' });
      }
      this.scheduleReconnect(opened);
    };
  }

  scheduleReconnect(wasOpen) {
    this.setStatus('reconnecting');
    const delay = wasOpen ? RECONNECT_MIN_MS : this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MAX_MS);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconnect().catch(() => this.scheduleReconnect(false)), delay);
  }

  async reconnect() {
    if (this.closed) return;
    const res = await apiFetch(`${this.base}/api/v1/sessions/${encodeURIComponent(this.id)}`);
    if (res.status === 404) {
      // Collected (no client for 30 s) or the server restarted: a new session where we were.
      const c = this.controls ?? {};
      const again = { speed: c.speed ?? 1, state: c.state ?? 'pause', loop: c.loop ?? false };
      if (c.start && c.start !== 'unbounded') again.start = c.start;
      if (c.end && c.end !== 'unbounded') again.end = c.end;
      if (this.posUs !== null) again.pos = this.posUs;
      await this.create(again);
    } else if (!res.ok) {
      throw new Error(`session lookup answered ${res.status}`);
    }
    this.connect();
  }

  /** Sends controls now, or when the socket (re)opens; later values win. */
  send(set) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'control', set: wireControls(set) }));
    } else {
      this.pending = { ...(this.pending ?? {}), ...set };
    }
  }

  /**
   * Actions (docs/playback.md): they move the session along once, so unlike controls they are
   * never kept for a socket that is not open (a burst replayed after a reconnect would
   * surprise). Each answers whether it was sent; the server's `controls` frame after the
   * batches marks its end.
   */

  /** Play-next: the next batch, then pause. */
  playNext() {
    return this.act({ next: true });
  }

  /** The next `n` batches at once, unpaced; playing plays on from there, paused stays paused. */
  burst(n) {
    return this.act({ burst: n });
  }

  /** A step or seek relative to the playhead, in the time grammar: '+1', '-10', 'pos+30s', 'pos-5m'. */
  seekBy(pos) {
    this.send({ pos });
  }

  act(set) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ type: 'control', set }));
    return true;
  }

  setStatus(state, error) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('status', { detail: { state, error } }));
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }
}
