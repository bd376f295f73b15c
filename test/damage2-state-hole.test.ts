/**
 * A state walk that would have to go back past a gone file (current's opening image damaged,
 * the rotated file before it deleted, a path last set before the hole): a reader's state
 * fails with a stable code (the damaged image's TPD_CORRUPT_BLOCK, or the gone file's
 * TPD_FILE_UNAVAILABLE), never the values from before the hole in silence; a writable open
 * starts, reports the gone file and records. Found sound (2026-12-04); guarded.
 */
import { describe, expect, it } from 'vitest';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { BlockType, FRAME_HEADER_BYTES } from '../storage/codec/frame.js';
import { xorByte } from './helpers/damage.js';
import { tmpDir } from './helpers/tmp.js';

const T0 = 1_700_000_000_000_000;
const OPTIONS = { flushIntervalMs: 0, imageFrequencyBytes: 1 << 20 };

describe('a state walk across a gone file', () => {
  it('a reader fails with a code; a writable open starts, reports the gone file and records', async () => {
    const dir = await tmpDir();
    const w = await Archive.open(dir, OPTIONS);
    for (let i = 0; i < 30; i++) {
      w.writer!.append(i < 5 ? [['/a', i], ['/b', `v${i}`], ['/c', i]] : [['/a', i], ['/b', `v${i}`]], T0 + i * 1000);
      await w.writer!.flush();
      if (i === 9 || i === 19) await w.writer!.rotate();
    }
    await w.close();
    const a0 = await Archive.open(dir, { readonly: true });
    const [, second] = a0.files.filter((f) => f.sealed);
    const cur = a0.files.at(-1)!;
    const t = a0.table(cur);
    let image = -1;
    for (let r = 0; r < t.length; r++) if (t.type(r) === BlockType.IMAGE) image = r;
    const at = t.offset(image) + FRAME_HEADER_BYTES + 2;
    await a0.close();
    await unlink(join(dir, second!.name));
    await xorByte(join(dir, 'current'), at, 0x10);

    const ro = await Archive.open(dir, { readonly: true });
    try {
      const c = ro.cursor();
      await c.seek({ ts: T0 + 25_000 });
      await expect(c.state()).rejects.toMatchObject({ code: expect.stringMatching(/^TPD_(CORRUPT_BLOCK|FILE_UNAVAILABLE)$/) });
    } finally {
      await ro.close();
    }
    const a = await Archive.open(dir, OPTIONS);
    try {
      expect(a.problems.map((p) => `${p.file} ${p.code}`).join('\n')).toMatch(new RegExp(`^${second!.name.replace(/\./g, '\\.')} TPD_FILE_UNAVAILABLE`, 'm'));
      a.writer!.append([['/a', 100]], T0 + 100_000);
      await a.writer!.flush();
    } finally {
      await a.close();
    }
  });
});
