// Types of layout.js, for the Node tests that import it (the page itself needs none).
export type Zoom = { fromUs: number; toUs: number } | { widthUs: number; at: number };
export interface Layout { v: 1; panels: Array<{ paths: string[] }>; zoom?: Zoom }
export const LAYOUT_VERSION: 1;
export function layoutProblem(layout: unknown): string | null;
export function copyLayout(layout: Layout): Layout;
