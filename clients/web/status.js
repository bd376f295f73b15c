// The connection status at the top right and the error banner. The status says what the
// server says: connecting, buffering (a cold file), live, playing, paused, ended, or an
// error with its code.
const $ = (id) => document.getElementById(id);

/** [state, text] for the model (app.js). */
export function statusOf(m) {
  if (m.conn === 'error' || m.conn === 'replaced') return ['error', m.error ? `error ${m.error.code}: ${m.error.message}` : 'error'];
  if (m.conn === 'connecting' || m.conn === 'reconnecting') return ['connecting', m.conn === 'reconnecting' ? 'reconnecting…' : 'connecting…'];
  if (m.conn === 'closed') return ['ended', 'closed'];
  if (m.buffering) return ['buffering', m.buffering.message.startsWith('buffering') ? m.buffering.message : `buffering: ${m.buffering.message}`];
  if (m.error) return ['error', `error ${m.error.code}: ${m.error.message}`];
  if (m.ended) return ['ended', 'ended'];
  const c = m.controls;
  if (c?.state === 'tail') return ['live', 'live'];
  if (c?.state === 'play') return ['playing', `playing ${c.speed === 'unlimited' ? 'unlimited' : `${c.speed}×`}`];
  if (c) return ['paused', 'paused'];
  return ['connecting', 'connecting…'];
}

let shown = { state: '', text: '' };

/** Runs on every frame: touches the DOM only when the status changed. */
export function renderStatus(m) {
  const [state, text] = statusOf(m);
  if (state === shown.state && text === shown.text) return;
  shown = { state, text };
  const el = $('conn');
  el.className = `conn conn-${state}`;
  el.dataset.state = state;
  $('conn-text').textContent = text;
}

export function showBanner(text, kind = 'error') {
  const b = $('banner');
  b.textContent = text;
  b.className = `banner banner-${kind}`;
  b.hidden = false;
}

export function hideBanner() {
  $('banner').hidden = true;
}
