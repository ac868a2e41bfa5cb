/**
 * `npm run lint:openapi`: builds the API (test/helpers/api.ts), writes its OpenAPI document to
 * dist/openapi.json and runs `redocly lint` on it with redocly.yaml (the recommended rules) and
 * .redocly.lint-ignore.yaml (the few findings that are true of this API, each with its reason).
 * Exits with redocly's code.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.js';
import { startApi } from './api.js';

const file = join(PROJECT_ROOT, 'dist', 'openapi.json');
const api = await startApi();
try {
  writeFileSync(file, JSON.stringify((await api.request('GET', '/openapi.json')).body, null, 2));
} finally {
  await api.stop();
}
const redocly = spawnSync(join(PROJECT_ROOT, 'node_modules/.bin/redocly'), ['lint', '--config', join(PROJECT_ROOT, 'redocly.yaml'), file], {
  cwd: PROJECT_ROOT,
  stdio: 'inherit',
  env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
});
process.exit(redocly.status ?? 1);
