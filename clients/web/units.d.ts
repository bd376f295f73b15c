// Types of units.js, for the Node tests that import it (the page itself needs none).
export const UNIT_RULES: ReadonlyArray<readonly [string, string]>;
export function unitOf(path: string, metaUnit?: string): string;
export function assignAxes(paths: string[], unitFor: (path: string) => string, axesMax: number): { units: string[]; scaleOf: Map<string, string>; refused: string[] };
