// Types of url-state.js, for the Node tests that import it (the page itself needs none).
export interface UrlControls {
  pos?: number | string;
  state: string;
  speed?: number | 'unlimited';
  start?: number | string;
  end?: number | string;
  loop?: boolean;
}
export interface UrlRead {
  controls: UrlControls;
  explicit: boolean;
  filter: string[];
  glob: string;
  selection: string[] | null;
  layout: unknown;
}
export interface UrlStateIn {
  posUs: number | null;
  state: string;
  speed?: number | string;
  loop?: boolean;
  startUs?: number | null;
  endUs?: number | null;
  filter?: string[];
  glob?: string;
  selection?: Iterable<string>;
  layout?: unknown;
}
export const URL_WRITE_INTERVAL_MS: number;
export function readUrlState(params: URLSearchParams): UrlRead;
export function legacySelection(values: string[]): string[] | null;
export function urlQuery(s: UrlStateIn): string;
export function boundUs(v: string | number | null | undefined): number | null;
export class UrlWriter {
  constructor(get: () => UrlStateIn | null, intervalMs?: number);
  schedule(): void;
  flush(): void;
}
