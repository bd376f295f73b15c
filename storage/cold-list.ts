/**
 * What the list hook prints, read and placed among the archive's files: pure functions,
 * no hooks or file system (cold.ts runs the hook and applies the result).
 */
import { ROTATED_NAME } from './segment-file.js';
import type { FileEntry } from './file-list.js';

/** A name from the list hook that may reach the file system: a rotated file's name, nothing else. */
export function isFileName(s: string): boolean {
  return ROTATED_NAME.test(s) && !s.includes('/') && !s.includes('..') && !s.includes('\0');
}

/** The file names in list output (one a line, blank lines ignored) and the lines that are not one. */
export function parseListOutput(stdout: string): { names: Set<string>; rejected: string[] } {
  const names = new Set<string>();
  const rejected: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (isFileName(line)) names.add(line);
    else rejected.push(line);
  }
  return { names, rejected };
}

/** A run of new names that does not fit between the known files around it. */
export interface RefusedRun {
  names: string[];
  /** Names of the known files around the run (null: none on that side). */
  between: [string | null, string | null];
}

/**
 * Seqs for names the archive does not know. Seqs are consecutive and names increase with
 * them, so a run of new names between two known files takes the seqs between them
 * (aligned to the newer one; the fetched header confirms the seq); a run with more names
 * than free seqs is refused whole. Result in seq order.
 */
export function placeNewNames(files: readonly FileEntry[], names: readonly string[]): { placed: Array<{ seq: number; name: string }>; refused: RefusedRun[] } {
  const runs = new Map<number, string[]>();
  for (const n of [...names].sort()) {
    let i = files.findIndex((f) => f.name > n);
    if (i < 0) i = files.length;
    const run = runs.get(i) ?? [];
    run.push(n);
    runs.set(i, run);
  }
  const placed: Array<{ seq: number; name: string }> = [];
  const refused: RefusedRun[] = [];
  for (const [i, run] of runs) {
    const prev = files[i - 1];
    const next = files[i];
    const lo = prev ? prev.seq + 1 : 0;
    const hi = next ? next.seq - 1 : Number.MAX_SAFE_INTEGER;
    if (run.length > hi - lo + 1) {
      refused.push({ names: run, between: [prev?.name ?? null, next?.name ?? null] });
      continue;
    }
    const first = next ? hi - run.length + 1 : lo;
    run.forEach((name, j) => placed.push({ seq: first + j, name }));
  }
  return { placed: placed.sort((x, y) => x.seq - y.seq), refused };
}
