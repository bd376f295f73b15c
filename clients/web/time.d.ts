// Types of time.js, for the Node tests that import it (the page itself needs none).
export function formatUs(us: number | null | undefined): string;
export function formatClock(us: number | null | undefined): string;
export function formatSpan(us: number): string;
export const MINUTE_US: number;
export const HOUR_US: number;
export function rfc3339Us(us: number): string;
