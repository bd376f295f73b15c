// Types of chart-limits.js, for the Node tests that import it (the page itself needs none).
export const CHART_LIMITS: Readonly<{
  panelsMax: number; pathsPerPanelMax: number; axesPerPanelMax: number; pathCharsMax: number; layoutCharsMax: number;
  pointsPerSeriesMax: number; historyWindowUs: number; windowFetchSpanMaxUs: number; gapsMax: number; stateBandsMax: number; zoomWidthMinUs: number;
}>;
