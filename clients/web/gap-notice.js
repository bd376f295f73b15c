// Where playback crossed archive files that cannot be read: a `gap` frame (GapFrame in
// protocol/frames.ts; docs/playback.md "Gone files"). The notice under the timeline says
// which times are unavailable and how many files, until it is dismissed or the next gap
// replaces it; the server's message (the reason, file names) is its title, as text.
import { formatUs } from './time.js';

/**
 * "Data from <from> to <to> is unavailable (n files)".
 * @param {import('../../protocol/frames.js').GapFrame} f
 */
export function gapText(f) {
  const n = f.files.length;
  const from = f.fromUs === null ? 'the beginning' : formatUs(f.fromUs);
  return `Data from ${from} to ${formatUs(f.toUs)} is unavailable (${n} ${n === 1 ? 'file' : 'files'})`;
}

export class GapNotice {
  /** `el` holds a `.gap-notice-text` and a `.gap-notice-close` button. */
  constructor(el) {
    this.el = el;
    this.textEl = el.querySelector('.gap-notice-text');
    el.querySelector('.gap-notice-close').addEventListener('click', () => this.hide());
  }

  /** @param {import('../../protocol/frames.js').GapFrame} f */
  show(f) {
    this.textEl.textContent = gapText(f);
    this.el.title = `${f.message}\nfiles: ${f.files.join(', ')}`;
    this.el.dataset.fromUs = f.fromUs === null ? '' : String(f.fromUs);
    this.el.dataset.toUs = String(f.toUs);
    this.el.dataset.files = String(f.files.length);
    this.el.hidden = false;
  }

  hide() {
    this.el.hidden = true;
  }
}
