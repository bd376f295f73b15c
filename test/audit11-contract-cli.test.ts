/**
 * The terminal clients cut long lines (tapedeck inspect's first batches at 160 code units,
 * tapedeck play's lines at the terminal's width): a cut must never fall inside a surrogate
 * pair, or the half left shows as a lone surrogate's escape (`\ud834`), a character the
 * recorded text does not hold. A non-BMP character at every place around the cut.
 */
import { describe, expect, it } from 'vitest';
import { clipText } from '../clients/cli/terminal-text.js';
import { isWellFormed } from '../protocol/value.js';
import { Archive } from '../storage/index.js';
import { tapedeck } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';

const T0 = Date.UTC(2026, 0, 1) * 1000;
const CLEF = '\u{1d11e}';

describe('terminal clients cut text between characters', () => {
  it('clipText keeps at most max code units and never half a pair', () => {
    for (let k = 0; k < 20; k++) {
      const s = `${'x'.repeat(k)}${CLEF}${'y'.repeat(20)}`;
      for (let max = 1; max <= s.length + 1; max++) {
        const out = clipText(s, max);
        expect(out.length).toBeLessThanOrEqual(max);
        expect(isWellFormed(out), `${k} ${max}`).toBe(true);
        expect(out === s || out.endsWith('…')).toBe(true);
      }
    }
  });

  it('tapedeck inspect --head shows a batch cut at 160 without a lone surrogate', async () => {
    const dir = await tmpDir('tapedeck-audit11-cli-');
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    // {"/p/NN":" is 10 code units: the pair lands on each place from 140 to 170.
    for (let k = 130; k <= 160; k++) a.writer!.append([[`/p/${k}`, `${'x'.repeat(k)}${CLEF}${'y'.repeat(40)}`]], T0 + k);
    await a.close();
    const r = await tapedeck('inspect', dir, '--head', '40');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.includes('update(s):'));
    expect(lines).toHaveLength(31);
    for (const l of lines) {
      expect(l).not.toMatch(/\\ud8[0-9a-f]{2}|\\udc[0-9a-f]{2}|\\udd[0-9a-f]{2}|\ufffd/);
      expect(isWellFormed(l)).toBe(true);
    }
  });
});
