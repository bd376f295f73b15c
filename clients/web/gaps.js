// Where a chart must not draw a line: recorder gaps (from the session's `coverage` frames).
// uPlot breaks a series at a null when `spanGaps` is false, so the drawn data gets a null
// point at each gap's start and end within the chart's x range, and a point that lies inside
// a gap (the state carried into it after a seek there) is drawn as a null too: nothing was
// recorded there. Pure: arrays in, arrays out; the stored points are not touched.

/**
 * Gaps (epoch µs, `endUs` null while open) as [startS, endS] spans in chart x units
 * (epoch seconds), sorted, empty ones dropped.
 */
export function gapSpans(gaps) {
  return gaps
    .map((g) => [g.startUs / 1e6, g.endUs === null ? Infinity : g.endUs / 1e6])
    .filter(([s, e]) => Number.isFinite(s) && e > s)
    .sort((a, b) => a[0] - b[0]);
}

/**
 * `xs` sorted epoch seconds and their `ys`; returns new [xs, ys] with a null at each gap
 * boundary inside [xs[0], xs[last]] (a start after the points at that x, an end before
 * them) and null ys for points strictly inside a gap. Linear in points plus gaps.
 */
export function breakAtGaps(xs, ys, spans) {
  if (xs.length === 0 || spans.length === 0) return [xs, ys];
  const first = xs[0];
  const last = xs[xs.length - 1];
  // A boundary is [x, 0] for a gap's end (null before the points at x), [x, 1] for a start (after them).
  const marks = [];
  for (const [s, e] of spans) {
    if (s >= first && s <= last) marks.push([s, 1]);
    if (e >= first && e <= last) marks.push([e, 0]);
  }
  if (marks.length === 0 && !spans.some(([s, e]) => s < last && e > first)) return [xs, ys];
  marks.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const outX = [];
  const outY = [];
  let m = 0;
  let g = 0;
  let coveredToS = -Infinity; // the furthest end of the spans that start before the current x
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    while (m < marks.length && (marks[m][0] < x || (marks[m][0] === x && marks[m][1] === 0))) { outX.push(marks[m][0]); outY.push(null); m++; }
    while (g < spans.length && spans[g][0] < x) { coveredToS = Math.max(coveredToS, spans[g][1]); g++; }
    outX.push(x);
    outY.push(x < coveredToS ? null : ys[i]);
    while (m < marks.length && marks[m][0] === x && marks[m][1] === 1) { outX.push(x); outY.push(null); m++; }
  }
  return [outX, outY];
}
