// Every bound of the charts in one table (the page's layer): what a layout may hold, what a
// series keeps, what is drawn. A layout from a URL or the server is checked against these
// before it is applied (layout.js), so no input can make the page build more than this.
export const CHART_LIMITS = Object.freeze({
  /** Panels in a layout (each one uPlot chart and its state tracks). */
  panelsMax: 12,
  /** Paths in one panel: numeric series and state tracks together. */
  pathsPerPanelMax: 8,
  /** Y axes in one panel, one per unit; a path needing another is refused there. */
  axesPerPanelMax: 4,
  /** Longest path a layout may name (protocol/limits.ts pathCharsMax). */
  pathCharsMax: 4096,
  /** A layout's JSON text, longest; a longer one is refused before it is parsed further. */
  layoutCharsMax: 64 * 1024,
  /** Recorded points a series keeps (the newest); history and playing trim to it. */
  pointsPerSeriesMax: 4000,
  /** History loaded before the position after a seek or when a path is added, µs. */
  historyWindowUs: 10 * 60e6,
  /** History asked at once when the window is moved before what is loaded, µs (the part nearest the loaded data). */
  windowFetchSpanMaxUs: 60 * 60e6,
  /** Recorder gaps the charts keep (the newest): a coverage frame carries at most 1000. */
  gapsMax: 1000,
  /** Bands a state track draws; runs narrower than a pixel are merged before this applies. */
  stateBandsMax: 2000,
  /** Narrowest zoom window, µs (uPlot's x scale is in seconds; below a millisecond it rounds). */
  zoomWidthMinUs: 1000,
});
