/**
 * The native column encoder's own Rust tests (native/column-encoder, `cargo test`): those
 * that compare a shortcut of the encoder with its general path over seeded inputs (the
 * short-column PACKED plan). Run here so that CI runs them. A machine without cargo
 * builds no addon either (scripts/install-native.sh: the TypeScript encoder then writes
 * every block), and this test is skipped there.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' }).status === 0;

describe.skipIf(!cargo)('native column encoder', () => {
  it('passes its cargo tests', () => {
    const dir = join(import.meta.dirname, '..', 'native', 'column-encoder');
    const r = spawnSync('cargo', ['test', '--release', '--locked', '--target-dir', join(dir, 'target')], { cwd: dir, encoding: 'utf8', timeout: 600_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).toBe(0);
    // The tests ran (a filter or a build without them would pass with none).
    expect(out).toMatch(/test packed::tests::plan_short_is_plan_general \.\.\. ok/);
  }, 600_000);
});
