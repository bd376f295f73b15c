// Where a path picked in the tree goes, and whether a path may join a panel. Panels are
// their lists of paths here; a path's kind ('number', 'state', or null before a value) and
// unit come from the caller. Pure: tested in Node.
import { CHART_LIMITS } from './chart-limits.js';

/** Whether a path of `kind` can join the panel of `paths`: room, not there yet, and an axis for its unit. */
export function fits(paths, path, kind, kindOfPath, unitFor) {
  if (paths.length >= CHART_LIMITS.pathsPerPanelMax || paths.includes(path)) return false;
  if (kind !== 'number') return true;
  const units = new Set(paths.filter((p) => kindOfPath(p) === 'number').map(unitFor));
  return units.has(unitFor(path)) || units.size < CHART_LIMITS.axesPerPanelMax;
}

/**
 * Where a picked path goes: { join: i } (panel i: the target when it fits, else for a
 * non-numeric path the last panel of state tracks only that fits), { insertAt: i } (a new
 * panel at i: numeric panels before the trailing panels of state tracks), or null when
 * there are panelsMax panels already.
 */
export function placeFor(panels, target, path, kind, kindOfPath, unitFor) {
  const joins = (i) => fits(panels[i], path, kind, kindOfPath, unitFor);
  if (target >= 0 && target < panels.length && joins(target)) return { join: target };
  const statesOnly = (paths) => !paths.some((p) => kindOfPath(p) === 'number');
  if (kind !== 'number') {
    for (let i = panels.length - 1; i >= 0; i--) if (statesOnly(panels[i]) && joins(i)) return { join: i };
  }
  if (panels.length >= CHART_LIMITS.panelsMax) return null;
  if (kind !== 'number') return { insertAt: panels.length };
  let i = panels.length;
  while (i > 0 && statesOnly(panels[i - 1])) i--;
  return { insertAt: i };
}
