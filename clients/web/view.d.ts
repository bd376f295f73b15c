// Types of view.js, for the Node tests that import it (the page itself needs none).
import type { Zoom } from './layout.js';
export type View = { follow: true; widthS?: number; at?: number } | { follow: false; minS: number; maxS: number };
export const FOLLOW: View;
export function windowOf(view: View, extent: [number, number] | null, headS: number | null): [number, number] | null;
export function viewFor(minS: number, maxS: number, headS: number | null): View;
export function panned(win: [number, number], fraction: number, headS: number | null): View;
export function zoomed(win: [number, number], factor: number, aboutS: number, headS: number | null): View;
export function zoomOfView(view: View): Zoom | undefined;
export function viewOfZoom(zoom: Zoom | undefined): View;
