// Types of series.js, for the Node tests that import it (the page itself needs none).
import type { Span } from './gaps.js';
export class Series {
  constructor(path: string);
  path: string;
  tsUs: number[];
  wire: unknown[];
  xs: number[];
  ys: Array<number | null>;
  kind: 'number' | 'state' | null;
  version: number;
  clear(): void;
  push(tsUs: number, wire: unknown): boolean;
  prepend(tsUs: number[], wire: unknown[]): void;
  indexAt(tsUs: number): number;
  broken(spans: Span[]): [number[], Array<number | null>];
}
export function alignSeries(tables: Array<[number[], Array<number | null>]>): Array<Array<number | null | undefined>>;
export function kindOf(wire: unknown): 'number' | 'state' | null;
