import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium (apt-get install -y chromium; .ci/run installs it): playwright-core drives it, nothing is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Why browser tests cannot run here, or null when they can. Locally a missing chromium skips
 * them with this reason; under CI=true it fails them, so CI never passes without a browser.
 */
export function browserUnavailable(): string | null {
  return existsSync(CHROMIUM) ? null : `chromium is not installed at ${CHROMIUM} (sudo apt-get install -y chromium)`;
}

export const skipWithoutBrowser = (): string | false => {
  const reason = browserUnavailable();
  return reason && process.env.CI !== 'true' ? reason : false;
};

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Headless chromium with a fresh profile and nothing that talks to the network on its own. */
export async function launchChromium(): Promise<Browser> {
  const reason = browserUnavailable();
  if (reason) throw new Error(`${reason}; under CI=true browser tests must run`);
  const profile = mkdtempSync(join(tmpdir(), 'tfjs-adapt-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    // pages may link beyond this machine (bull-board's UI loads a web font): no name resolves, so nothing leaves it
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
