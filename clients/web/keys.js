// Keyboard shortcuts: one table (keys, how the help shows them, what they do) that both the
// keydown handler and the help overlay (`?`) read, so the help cannot drift from the keys.

/**
 * The shortcuts for a set of actions (app.js): each row { keys, shown, does, run }. `keys`
 * are KeyboardEvent.key values; `shown` is what the help prints.
 */
export function keyTable(a) {
  return [
    { keys: [' '], shown: ['Space'], does: 'Play / pause', run: a.togglePlay },
    { keys: ['ArrowLeft', 'ArrowRight'], shown: ['←', '→'], does: 'Step one batch back / forward (a seek: the state at the new position)', run: (k) => a.step(k === 'ArrowLeft' ? -1 : 1) },
    { keys: ['n'], shown: ['n'], does: 'Play next: play the next batch, as recorded', run: a.playNext },
    { keys: ['b'], shown: ['b'], does: `Burst: play the next ${a.burstBatches} batches at once`, run: a.burst },
    { keys: ['ArrowDown', 'ArrowUp'], shown: ['↓', '↑'], does: 'Back / forward 1 minute', run: (k) => a.jumpMinutes(k === 'ArrowDown' ? -1 : 1) },
    { keys: ['PageDown', 'PageUp'], shown: ['PageDown', 'PageUp'], does: 'Back / forward 1 hour', run: (k) => a.jumpHours(k === 'PageDown' ? -1 : 1) },
    { keys: ['Home', 'End'], shown: ['Home', 'End'], does: 'Beginning / end of the archive', run: (k) => a.seekEdge(k === 'Home' ? 'beginning' : 'end') },
    { keys: ['+', '=', '-'], shown: ['+', '-'], does: 'Faster / slower', run: (k) => a.speedStep(k === '-' ? -1 : 1) },
    { keys: ['u'], shown: ['u'], does: 'Unlimited speed', run: a.unlimited },
    { keys: ['t'], shown: ['t'], does: 'Live (follow the tail)', run: a.live },
    { keys: ['l'], shown: ['l'], does: 'Loop on / off', run: a.toggleLoop },
    { keys: ['[', ']', '\\'], shown: ['[', ']', '\\'], does: 'Start / end marker at the position, clear markers', run: (k) => a.mark(k === '[' ? 'start' : k === ']' ? 'end' : 'clear') },
    { keys: ['d'], shown: ['d'], does: 'What changed between the start and end markers', run: a.whatChanged },
    { keys: ['m'], shown: ['m'], does: 'Bookmark the position (type a note, Enter)', run: a.bookmark },
    { keys: [',', '.'], shown: [',', '.'], does: 'Previous / next bookmark', run: (k) => a.bookmarkJump(k === ',' ? -1 : 1) },
    { keys: ['c'], shown: ['c'], does: 'Copy the link to this moment', run: a.copyLink },
    { keys: ['/'], shown: ['/'], does: 'Focus the path filter (Escape leaves it)', run: a.focusFilter },
    { keys: ['?'], shown: ['?'], does: 'This help (Escape closes it)', run: a.help },
  ];
}

/**
 * Runs the row for each key pressed on the page, except while typing in a field, with a
 * modifier held (the browser's own shortcuts), or while `blocked()` (a dialog is open). A
 * focused button keeps Space and Enter for itself (keyboard users press the button).
 */
export function bindKeys(target, table, blocked) {
  const byKey = new Map();
  for (const row of table) for (const k of row.keys) byKey.set(k, row);
  target.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
    if (blocked()) return;
    if (t instanceof HTMLButtonElement && (ev.key === ' ' || ev.key === 'Enter')) return;
    const row = byKey.get(ev.key);
    if (!row) return;
    ev.preventDefault();
    row.run(ev.key);
  });
}

/** The help overlay's table of keys, built as elements from the same table. */
export function renderHelp(tbody, table) {
  const rows = table.map((row) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    for (const [i, s] of row.shown.entries()) {
      if (i > 0) th.append(' ');
      const kbd = document.createElement('kbd');
      kbd.textContent = s;
      th.append(kbd);
    }
    const td = document.createElement('td');
    td.textContent = row.does;
    tr.append(th, td);
    tr.dataset.keys = row.keys.join(' ');
    return tr;
  });
  tbody.replaceChildren(...rows);
}
