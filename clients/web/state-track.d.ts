// Types of state-track.js, for the Node tests that import it (the page itself needs none).
import type { Series } from './series.js';
import type { Span } from './gaps.js';
export function bandColor(text: string): string;
export function stateRuns(series: Series, spans: Span[], minS: number, maxS: number, headS: number | null): Array<{ fromS: number; toS: number; i: number }>;
