// Types of values.js, for the Node tests that import it (the page itself needs none).
export function reviveValue(v: unknown): unknown;
export function chartNumber(v: unknown): number | null;
export function isNumeric(v: unknown): boolean;
export function formatValue(v: unknown): string;
export function pathFilter(text: string): (path: string) => boolean;
export function filterProblem(text: string): string | null;
export function filterGlob(text: string): string | null;
