// Types of gaps.js, for the Node tests that import it (the page itself needs none).
export type Span = [number, number];
export function gapSpans(gaps: Array<{ startUs: number; endUs: number | null }>): Span[];
export function breakAtGaps(xs: number[], ys: Array<number | null>, spans: Span[]): [number[], Array<number | null>];
