// Types of topology.js's pure parts, for the Node tests that import them (the page needs none).
export interface TopoNode { id: string; role: string | null }
export interface TopoLink { key: string; a: string; b: string; metrics: Map<string, string> }
export type TopoRole =
  | { kind: 'link'; key: string; a: string; b: string; field: string }
  | { kind: 'node' | 'edge'; key: string; field: string };
export const TOPOLOGY_LIMITS: { nodesMax: number; linksMax: number };
export const SCALE_STOPS: string[];
export const NO_VALUE_COLOUR: string;
export function topologyRole(path: string): TopoRole | null;
export function graphOf(values: Map<string, unknown>): { nodes: TopoNode[]; links: TopoLink[] };
export function layoutOf(nodes: TopoNode[], width: number, height: number): Map<string, { x: number; y: number }>;
export function isPercent(metric: string): boolean;
export function domainOf(metric: string, seen: [number, number] | null): [number, number];
export function colourOf(value: number | null | undefined, domain: [number, number]): string;
export function initTopology(session: EventTarget, root: unknown): unknown;
