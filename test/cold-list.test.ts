import { describe, expect, it } from 'vitest';
import { parseListOutput, placeNewNames } from '../storage/cold-list.js';
import { FileList } from '../storage/file-list.js';

const name = (second: number): string => `2026-11-23T07:45:${String(second).padStart(2, '0')}.000000Z`;

/** Known files: rotated ones at (seq, second) and then `current`. */
function known(...files: Array<[number, number]>): FileList {
  const l = new FileList();
  for (const [seq, s] of files) l.append({ seq, name: name(s), location: 'local', firstTs: null, lastTs: null, committedBytes: 100, sealed: true, damaged: false });
  const last = l.last()?.seq ?? -1;
  l.append({ seq: last + 1, name: 'current', location: 'local', firstTs: null, lastTs: null, committedBytes: 100, sealed: false, damaged: false });
  return l;
}

describe('list output', () => {
  it('keeps rotated file names once and refuses every other line, paths and NUL among them', () => {
    const out = ['', name(1), `  ${name(2)}  `, name(1), '../../etc/passwd', `a/${name(3)}`, 'current', `${name(4)}/..`, `${name(5)}\0`, '2026-11-23T07:45:12Z', '\r'].join('\n');
    const { names, rejected } = parseListOutput(out);
    expect([...names]).toEqual([name(1), name(2)]);
    expect(rejected).toEqual(['../../etc/passwd', `a/${name(3)}`, 'current', `${name(4)}/..`, `${name(5)}\0`, '2026-11-23T07:45:12Z']);
  });

  it('places names older than every known file and between two, aligned to the newer file, in seq order', () => {
    const files = known([3, 10], [6, 20], [9, 30]).all();
    const { placed, refused } = placeNewNames(files, [name(25), name(5), name(12), name(35), name(1)]);
    // Before seq 3: seqs 1, 2; between 3 and 6: seq 5; between 6 and 9: seq 8. `current`
    // (seq 10) sorts after every rotated name and follows seq 9: no seq for name(35).
    expect(placed).toEqual([
      { seq: 1, name: name(1) }, { seq: 2, name: name(5) }, { seq: 5, name: name(12) }, { seq: 8, name: name(25) },
    ]);
    expect(refused).toEqual([{ names: [name(35)], between: [name(30), 'current'] }]);
  });

  it('refuses a whole run that has more names than free seqs, and places another run', () => {
    const files = known([0, 10], [3, 20], [5, 30]).all();
    const { placed, refused } = placeNewNames(files, [name(11), name(12), name(13), name(21)]);
    expect(refused).toEqual([{ names: [name(11), name(12), name(13)], between: [name(10), name(20)] }]);
    expect(placed).toEqual([{ seq: 4, name: name(21) }]);
  });

  it('numbers names from 0 in an archive that knows no file', () => {
    expect(placeNewNames([], [name(2), name(1)]).placed).toEqual([{ seq: 0, name: name(1) }, { seq: 1, name: name(2) }]);
  });
});
