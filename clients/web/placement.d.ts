// Types of placement.js, for the Node tests that import it (the page itself needs none).
type Kind = 'number' | 'state' | null;
export function fits(paths: string[], path: string, kind: Kind, kindOfPath: (p: string) => Kind, unitFor: (p: string) => string): boolean;
export function placeFor(panels: string[][], target: number, path: string, kind: Kind, kindOfPath: (p: string) => Kind, unitFor: (p: string) => string): { join: number } | { insertAt: number } | null;
