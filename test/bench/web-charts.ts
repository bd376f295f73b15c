/**
 * What one animation frame of the charts costs in data preparation at the layout limits
 * (clients/web/chart-limits.js): 12 panels of 8 numeric series of 4000 points each, with
 * 1000 recorder gaps, each series broken at the gaps (gaps.js) and a panel's series merged
 * into uPlot's aligned columns (series.js alignSeries), as while playing (every series
 * changed since the last frame; paused, zoomed or hovered, the panels reuse their data).
 * Two cases: every series at its own timestamps (the worst for the merge), and the series of
 * a panel written by the same batches (the usual telemetry: shared timestamps). The pure
 * parts, in Node; uPlot's own drawing and the DOM are not in it. Prints one JSON object.
 *   node --import tsx test/bench/web-charts.ts
 */
import { CHART_LIMITS } from '../../clients/web/chart-limits.js';
import { gapSpans } from '../../clients/web/gaps.js';
import { alignSeries, Series } from '../../clients/web/series.js';

const T0_US = 1_800_000_000_000_000;
const panels = CHART_LIMITS.panelsMax;
const perPanel = CHART_LIMITS.pathsPerPanelMax;
const points = CHART_LIMITS.pointsPerSeriesMax;
const gaps = CHART_LIMITS.gapsMax;

/** The layout's series at 1 s steps; `offsetUs` apart within a panel (0: shared timestamps). */
function layout(offsetUs: number): Series[][] {
  return Array.from({ length: panels }, (_, p) => Array.from({ length: perPanel }, (_, k) => {
    const s = new Series(`/bench/${p}/${k}`);
    for (let i = 0; i < points; i++) s.push(T0_US + i * 1e6 + k * offsetUs, i * 0.5 + k);
    return s;
  }));
}
// Gaps of 0.3 s spread over the range.
const spans = gapSpans(Array.from({ length: gaps }, (_, g) => {
  const startUs = T0_US + Math.floor((g * points) / gaps) * 1e6 + 400_000;
  return { startUs, endUs: startUs + 300_000 };
}));

function frame(panelsOf: Series[][]): number {
  let cells = 0;
  for (const panel of panelsOf) {
    const data = alignSeries(panel.map((s) => s.broken(spans)));
    cells += data.length * data[0]!.length;
  }
  return cells;
}

function measure(panelsOf: Series[][]): { alignedCells: number; frameMsMedian: number; frameMsP90: number } {
  for (let i = 0; i < 5; i++) frame(panelsOf); // warm up
  const runs = 30;
  const ms: number[] = [];
  let cells = 0;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    cells = frame(panelsOf);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { alignedCells: cells, frameMsMedian: Number(ms[Math.floor(runs / 2)]!.toFixed(2)), frameMsP90: Number(ms[Math.floor(runs * 0.9)]!.toFixed(2)) };
}

console.log(JSON.stringify({
  bench: 'web-charts-frame',
  panels, seriesPerPanel: perPanel, pointsPerSeries: points, gaps,
  ownTimestamps: measure(layout(1000)),
  sharedTimestamps: measure(layout(0)),
}));
