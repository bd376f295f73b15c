// The transport's look follows the server's controls frame: play/pause icon, Live and Loop
// pressed, the speed list (a speed set elsewhere is added in order), the markers on the
// timeline and in words.
import { formatUs } from './time.js';
import { boundUs } from './url-state.js';

const icon = (d) => `<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path d="${d}" fill="currentColor"/></svg>`;
const ICON_PLAY = icon('M4 2v12l10-6z');
const ICON_PAUSE = icon('M3 2h4v12H3zM9 2h4v12H9z');
const $ = (id) => document.getElementById(id);

export function renderControls(c, timeline) {
  if (!c) return;
  const playing = c.state === 'play' || c.state === 'tail';
  const play = $('btn-play');
  play.innerHTML = playing ? ICON_PAUSE : ICON_PLAY;
  play.setAttribute('aria-label', playing ? 'Pause' : 'Play');
  $('btn-live').setAttribute('aria-pressed', String(c.state === 'tail'));
  $('btn-loop').setAttribute('aria-pressed', String(c.loop));
  const sel = $('speed');
  const v = String(c.speed);
  if (![...sel.options].some((o) => o.value === v)) {
    const o = new Option(`${v}×`, v);
    const after = [...sel.options].find((x) => x.value !== 'unlimited' && Number(x.value) > Number(v));
    sel.add(o, after ?? sel.options[sel.options.length - 1]);
  }
  sel.value = v;
  const startUs = boundUs(c.start);
  const endUs = boundUs(c.end);
  timeline.setBounds(startUs, endUs);
  $('tl-bounds').textContent = startUs === null && endUs === null ? ''
    : `start ${startUs === null ? 'unbounded' : formatUs(startUs)} · end ${endUs === null ? 'unbounded' : formatUs(endUs)}`;
}
