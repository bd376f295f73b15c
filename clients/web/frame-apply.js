// What each session frame does to the player: the values at the position, the controls, the
// connection and the notices in the model (app.js), and the views that show them (the
// table, the charts, the tree, the timeline, the position). One listener per event of the
// session (session.js); app.js owns the model and the views and hands them over here.
import { formatUs } from './time.js';
import { showBanner } from './status.js';
import { renderControls } from './transport.js';

/**
 * Follows `session`'s frames and status. `view`: { model, table, charts, timeline, tree,
 * gapNotice, posEl, refreshCoverage, renderStatus, urlWriter }.
 */
export function followSession(session, view) {
  const { model, table, charts, timeline, tree, gapNotice, posEl, refreshCoverage, renderStatus, urlWriter } = view;

  let treeTimer = 0;
  function noticePaths(paths) {
    if (tree.addPaths(paths) && !treeTimer) {
      treeTimer = setTimeout(() => { treeTimer = 0; tree.render(); }, 250);
    }
  }

  function applyBatch(ts, updates) {
    const fresh = [];
    for (const [p, v] of updates) {
      if (!model.values.has(p)) fresh.push(p);
      model.values.set(p, v);
      table.update(p, v, ts);
    }
    if (fresh.length > 0) noticePaths(fresh);
    charts.append(ts, updates);
    model.posUs = ts;
    timeline.extendTo(ts);
  }

  session.addEventListener('frame', (ev) => {
    const f = ev.detail;
    switch (f.type) {
      case 'state': {
        model.values = new Map(Object.entries(f.values));
        model.posUs = f.ts;
        model.buffering = null;
        model.ended = false;
        noticePaths(model.values.keys());
        table.setPaths(model.selected, model.values);
        for (const [p, v] of model.values) table.update(p, v, null);
        charts.setPaths(model.selected, model.values, null);
        charts.reset(f.ts, model.values);
        timeline.extendTo(f.ts);
        break;
      }
      case 'batch':
        model.buffering = null;
        applyBatch(f.ts, f.updates);
        break;
      case 'batches':
        model.buffering = null;
        for (const b of f.batches) applyBatch(b.ts, b.updates);
        break;
      case 'controls':
        model.controls = f.controls;
        if (f.controls.posUs !== null) model.posUs = f.controls.posUs;
        if (f.controls.state !== 'pause') model.ended = false;
        renderControls(model.controls, timeline);
        break;
      case 'coverage':
        // The session's gaps break the charts' lines; the frame also says the coverage may have
        // changed (sent again while tailing), so the timeline asks for the whole archive's.
        charts.setGaps(f.gaps);
        refreshCoverage();
        break;
      case 'gap':
        // Files gone under the session (docs/playback.md "Gone files"): the state at toUs follows.
        // A hole met again (a loop, a seek back) stays marked but does not bring the notice back.
        if (timeline.addLost(f)) gapNotice.show(f);
        break;
      case 'end':
        model.ended = true;
        break;
      case 'error':
        model.error = { code: f.code, message: f.message };
        showBanner(`${f.code}: ${f.message}`);
        break;
      case 'info':
        // A cold file is being fetched (TPD_BUFFERING) until it arrived (TPD_BUFFERED).
        if (f.code === 'TPD_BUFFERING') model.buffering = f;
        else if (f.code === 'TPD_BUFFERED') model.buffering = null;
        else showBanner(`${f.code}: ${f.message}`, 'info');
        break;
    }
    schedulePosition();
    renderStatus();
    urlWriter.schedule();
  });

  session.addEventListener('status', (ev) => {
    model.conn = ev.detail.state;
    if (ev.detail.error) {
      model.error = ev.detail.error;
      showBanner(`${ev.detail.error.code}: ${ev.detail.error.message}`);
    }
    renderStatus();
  });

  let posFrame = 0;
  function schedulePosition() {
    if (!posFrame) posFrame = requestAnimationFrame(renderPosition);
  }

  function renderPosition() {
    posFrame = 0;
    const el = posEl;
    el.textContent = formatUs(model.posUs);
    el.dataset.us = model.posUs === null ? '' : String(model.posUs);
    if (model.posUs !== null) el.dateTime = new Date(Math.floor(model.posUs / 1000)).toISOString();
    if (!timeline.dragging) timeline.setPosition(model.posUs);
  }
}
