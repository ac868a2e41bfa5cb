/** Every top folder and every process folder under workers/ says in a README.md what belongs there and what it may import. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../src/paths.js';

test('each top folder and each process folder of workers/ has a README.md', () => {
  // tracked files only: a checkout may hold data or build folders of its own
  const tracked = execFileSync('git', ['ls-files'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  const folders = new Set<string>();
  for (const file of tracked) {
    const [top, second] = file.split('/');
    if (dirname(file) === '.' || top.startsWith('.')) continue;
    folders.add(top);
    if (top === 'workers' && second && dirname(file) !== 'workers') folders.add(`workers/${second}`);
  }
  assert.ok(folders.has('src') && folders.has('workers/host') && folders.has('workers/training'), `found ${[...folders].join(', ')}`);
  const missing = [...folders].filter((dir) => !existsSync(join(PROJECT_ROOT, dir, 'README.md')));
  assert.deepEqual(missing, [], `folders without a README.md: ${missing.join(', ')}`);
});
