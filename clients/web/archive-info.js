// What the timeline knows of the whole archive: its files (GET /api/v1/archive) and where
// the record is blind (GET /api/v1/coverage), asked at start, every few seconds, and again
// when a coverage frame says it may have changed.
import { apiFetch } from './http.js';
import { formatSpan } from './time.js';

export class ArchiveInfo {
  /** onDenied(error): a 401/403 (the token is missing or lacks the scope). */
  constructor(base, timeline, el, onDenied) {
    this.base = base;
    this.timeline = timeline;
    this.el = el;
    this.onDenied = onDenied;
    this.coverageAsked = 0;
  }

  async refreshArchive() {
    try {
      const res = await apiFetch(`${this.base}/api/v1/archive`);
      if (!res.ok) {
        const e = (await res.json().catch(() => null))?.error;
        if (e && (res.status === 401 || res.status === 403)) this.onDenied(e);
        return;
      }
      const info = await res.json();
      this.timeline.setArchive(info);
      const span = this.timeline.span();
      this.el.title = span === null ? 'empty archive' : `archive: ${formatSpan(span)} in ${info.files.length} file(s)`;
    } catch {
      // The connection status shows a server that is away.
    }
  }

  async refreshCoverage() {
    const asked = ++this.coverageAsked;
    try {
      const res = await apiFetch(`${this.base}/api/v1/coverage`);
      const answer = res.ok ? await res.json() : null;
      // Answers can cross (a frame and the interval both ask): only the newest question's counts.
      if (answer && asked === this.coverageAsked) this.timeline.setCoverage(answer);
    } catch {
      // As for the archive: the connection status shows a server that is away.
    }
  }
}
