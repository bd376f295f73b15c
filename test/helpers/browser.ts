/**
 * Debian's Chromium driven by playwright-core (browsers cannot be downloaded here;
 * scripts/install-chromium.sh installs /usr/bin/chromium). Headless, no sandbox (root in
 * CI), no GPU, none of Chromium's background connections (the network is closed), and a
 * fresh empty profile per launch.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.TAPEDECK_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = join(import.meta.dirname, '..', '..', 'test-artifacts');

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM_PATH) && process.env.TAPEDECK_CHROMIUM === undefined) {
    // The test setup installs Debian's package itself when the machine lacks it.
    execFileSync('bash', [join(import.meta.dirname, '..', '..', 'scripts', 'install-chromium.sh')], { stdio: 'inherit', timeout: 600_000 });
  }
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing and scripts/install-chromium.sh could not install it`);
  }
  const profile = await mkdtemp(join(tmpdir(), 'tapedeck-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Where a test's screenshot goes (test-artifacts/, gitignored). */
export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  return join(ARTIFACTS_DIR, name);
}
