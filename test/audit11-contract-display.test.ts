/**
 * What the web player shows for a value (clients/web/values.js formatValue, through
 * protocol/value-json.ts valueToDisplayText): never a character a screen does not show as
 * itself (controls, DEL, C1, bidi overrides, lone surrogates), and never one value's text for
 * another's: a string that reads as something else ("1", "true", "", " a", "—", "<2 bytes>")
 * or holds such characters is shown as its JSON text, which reads back to it. Hostile values
 * from test/helpers/values.ts (fast-check, FC_SEED replays) and hand-picked look-alikes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJsonValueText, valueToDisplayText, valueToJson } from '../protocol/value-json.js';
import type { Value } from '../protocol/value.js';
import { buildWebProtocol } from '../scripts/build-web.mjs';
import { hostileString, hostileValue, propertySeed, valueDiff } from './helpers/values.js';

await buildWebProtocol();
const { formatValue } = await import('../clients/web/values.js');

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSHOWN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The value a shown text stands for, when it was not cut: the string itself, or what its JSON text (or number) reads as. */
function readBack(text: string, v: Value): void {
  if (typeof v === 'string' && text === v) return;
  const got = typeof v === 'number' ? Number(text === '-0' ? '-0' : text) : parseJsonValueText(text, '/shown');
  expect(valueDiff(v, got), `${JSON.stringify(text)}`).toBeUndefined();
}

describe('values as the web player shows them', () => {
  it('shows no control, bidi override or lone surrogate, and every string and number reads back from its text', () => {
    const seed = propertySeed('audit11 display');
    fc.assert(
      fc.property(fc.oneof(hostileValue, hostileString.map((s): Value => s)), (v) => {
        const text = formatValue(valueToJson(v)) as string;
        expect(text).not.toMatch(UNSHOWN);
        if (text.endsWith('…') || v instanceof Uint8Array || typeof v === 'bigint' || typeof v === 'boolean' || v === null) return;
        readBack(text, v);
      }),
      { seed, numRuns: 2000 },
    );
  });

  it('shows look-alikes of other values and of the page\'s own notations differently from them', () => {
    const pairs: Array<[Value, Value]> = [
      ['1', 1], ['-0', -0], ['NaN', NaN], ['true', true], ['null', null], ['', null], ['—', null], [' a', 'a'], ['a ', 'a'],
      ['a\nb', 'a b'], ['a\u202eb', 'ab'], ['<2 bytes>', new Uint8Array(2)], ['[1]', [1]], ['{}', {}], ['\u0085', ''], ['\u00a0x', 'x'],
    ];
    for (const [a, b] of pairs) {
      expect(formatValue(valueToJson(a)), `${JSON.stringify(valueToJson(a))} vs ${JSON.stringify(valueToJson(b))}`).not.toBe(formatValue(valueToJson(b)));
    }
    // Plain text is shown as itself.
    for (const s of ['up', 'a b', 'é𝄞', 'sw-001/eth0']) expect(formatValue(s)).toBe(s);
    expect(valueToDisplayText('x\u009b2J')).toBe('"x\\u009b2J"');
  });
});
