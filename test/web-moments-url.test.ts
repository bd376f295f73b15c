/**
 * The player's URL state in Node (clients/web/url-state.js): any state written by urlQuery
 * reads back the same through readUrlState, whatever the paths, globs and layout hold
 * (& = # % + , spaces, non-Latin text, a lone "?" ...); old links and hand-typed times still
 * read; markers from the controls frame convert to the µs. Seeded; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { boundUs, readUrlState, urlQuery, type UrlStateIn } from '../clients/web/url-state.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const NASTY = ['&', '=', '#', '%', '%25', '+', ',', ' ', '?', '/', 'é', '日本', '😀', '"', "'", '<b>', '\\', ';', '[', ']'];

describe('URL state', () => {
  it('reads back every state it writes (seeded property)', () => {
    const seed = scheduleSeed('URL_STATE_SEED', 'url state');
    const r = rng(seed);
    const word = (): string => Array.from({ length: 1 + Math.floor(r() * 5) }, () => (r() < 0.4 ? NASTY[Math.floor(r() * NASTY.length)] : String.fromCharCode(97 + Math.floor(r() * 26)))).join('');
    const path = (): string => `/${word()}/${word()}`;
    for (let i = 0; i < 500; i++) {
      const state = (['play', 'pause', 'tail'] as const)[Math.floor(r() * 3)]!;
      const s: UrlStateIn = {
        posUs: Math.floor(r() * 2 ** 52),
        state,
        speed: r() < 0.2 ? 'unlimited' : [0.1, 0.25, 1, 2, 7.5, 100][Math.floor(r() * 6)]!,
        loop: r() < 0.5,
        startUs: r() < 0.5 ? null : Math.floor(r() * 2 ** 52),
        endUs: r() < 0.5 ? null : Math.floor(r() * 2 ** 52),
        filter: Array.from({ length: Math.floor(r() * 3) }, () => `${path()}/**`),
        glob: r() < 0.3 ? '' : word(),
        selection: new Set(Array.from({ length: Math.floor(r() * 4) }, path)),
        layout: r() < 0.3 ? null : { v: 1, panels: [{ paths: [path(), path()] }], note: word() },
      };
      const back = readUrlState(new URLSearchParams(urlQuery(s)));
      const c = back.controls;
      expect(c.state, `seed ${seed} case ${i}`).toBe(state);
      if (state === 'tail') expect(c.pos).toBeUndefined();
      else expect(c.pos).toBe(s.posUs);
      expect(c.speed ?? 1).toBe(s.speed);
      expect(c.loop ?? false).toBe(s.loop);
      expect(c.start ?? null).toBe(s.startUs);
      expect(c.end ?? null).toBe(s.endUs);
      expect(back.filter).toEqual(s.filter);
      expect(back.glob).toBe(s.glob);
      const selected = [...(s.selection ?? [])].sort();
      expect(back.selection ?? []).toEqual(selected);
      expect(back.layout).toEqual(s.layout);
      expect(back.explicit).toBe(true);
    }
  });

  it('reads old and hand-typed links', () => {
    const old = readUrlState(new URLSearchParams('pos=2026-11-23T14:02:00Z&speed=10&select=/a/b,/c'));
    expect(old.controls).toEqual({ state: 'pause', pos: '2026-11-23T14:02:00Z', speed: 10 });
    expect(old.selection).toEqual(['/a/b', '/c']);
    const plain = readUrlState(new URLSearchParams(''));
    expect(plain).toEqual({ controls: { state: 'tail' }, explicit: false, filter: [], glob: '', selection: null, layout: null });
    // A layout that is not JSON is dropped, not thrown.
    expect(readUrlState(new URLSearchParams('layout=%7Bnope')).layout).toBeNull();
    // The token never goes into a written URL.
    expect(urlQuery({ posUs: 5, state: 'pause' })).toBe('pos=5&state=pause');
  });

  it('converts the controls frame markers to epoch µs, past the millisecond', () => {
    expect(boundUs('2026-01-01T00:00:07.123457Z')).toBe(Date.UTC(2026, 0, 1, 0, 0, 7) * 1000 + 123_457);
    expect(boundUs('2026-01-01T00:00:07.123456789Z')).toBe(Date.UTC(2026, 0, 1, 0, 0, 7) * 1000 + 123_456);
    expect(boundUs('2026-01-01T00:00:07Z')).toBe(Date.UTC(2026, 0, 1, 0, 0, 7) * 1000);
    expect(boundUs('unbounded')).toBeNull();
    expect(boundUs(null)).toBeNull();
    expect(boundUs('garbage')).toBeNull();
    expect(boundUs(42)).toBe(42);
  });
});
