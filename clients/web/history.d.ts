// Types of history.js, for the Node tests that import it (the page itself needs none).
export const HISTORY_QUERY_CHARS_MAX: number;
export function pathGlob(path: string): string;
export function historyQueries(paths: string[], fromUs: number, toUs: number): string[];
export function loadHistory(base: string, paths: string[], fromUs: number, toUs: number): Promise<Map<string, { tsUs: number[]; wire: unknown[] }> | null>;
