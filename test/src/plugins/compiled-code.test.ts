import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { CompiledCode } from '../../../src/plugins/compiled-code.js';
import { validatorCompiler } from '../../../src/plugins/validator.js';

const dir = mkdtempSync(join(tmpdir(), 'tfjs-adapt-compiled-code-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MODULE = new URL('../../../src/plugins/compiled-code.js', import.meta.url).href;

/** Asks a new process (nothing in memory) for `content`; says whether it had to generate the code and what the code returned. */
function start(content: string, body: string): { generated: boolean; value: unknown } {
  const script = `
    const { CompiledCode } = await import(${JSON.stringify(MODULE)});
    const [dir, content, body] = process.argv.slice(1);
    let generated = false;
    const run = new CompiledCode(dir).get(content, () => ((generated = true), body));
    console.log(JSON.stringify({ generated, value: run() }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script, dir, content, body], { encoding: 'utf8' })) as {
    generated: boolean;
    value: unknown;
  };
}

const files = () => readdirSync(dir).filter((f) => f.endsWith('.cjs'));

test('the first process compiles and stores; the next loads the stored code instead of compiling', () => {
  assert.deepEqual(start('schema A', 'module.exports = () => "a"'), { generated: true, value: 'a' });
  assert.deepEqual(start('schema A', 'module.exports = () => "not loaded"'), { generated: false, value: 'a' });
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0, 'no temp file is left');
});

test('a changed schema never loads the old code: its key is its content', () => {
  start('schema B', 'module.exports = () => "b1"');
  assert.deepEqual(start('schema B, changed', 'module.exports = () => "b2"'), { generated: true, value: 'b2' });
  assert.deepEqual(start('schema B', 'module.exports = () => "unused"'), { generated: false, value: 'b1' }, 'the first keeps its own file');
});

test('a torn or corrupt file is ignored, compiled again and rewritten', () => {
  const before = new Set(files());
  start('schema C', 'module.exports = () => "c"');
  const [file] = files().filter((f) => !before.has(f));
  assert.ok(file, 'a new file for schema C');
  const path = join(dir, file);
  const whole = readFileSync(path, 'utf8');
  for (const damaged of [whole.slice(0, whole.length - 5), whole.replace('"c"', '"x"'), '']) {
    writeFileSync(path, damaged);
    assert.deepEqual(start('schema C', 'module.exports = () => "c"'), { generated: true, value: 'c' }, JSON.stringify(damaged));
    assert.equal(readFileSync(path, 'utf8'), whole, 'rewritten whole');
  }
  assert.deepEqual(start('schema C', 'module.exports = () => "unused"'), { generated: false, value: 'c' });
});

test('request validators from stored code check what their schema says, each its own', () => {
  const compile = (maxLength: number) =>
    validatorCompiler(new CompiledCode(dir))({
      schema: Type.Object({ name: Type.String({ maxLength }) }, { additionalProperties: false }),
      httpPart: 'body',
      method: 'POST',
      url: '/',
    });
  const short = compile(3);
  const long = compile(5);
  assert.equal(short({ name: 'abcd' }), false);
  assert.equal(long({ name: 'abcd' }), true);
  assert.equal(long({ name: 'abcd', extra: 1 }), false, 'unknown properties are errors');
});

test('without a directory the code is compiled in memory and nothing is written', () => {
  const none = new CompiledCode(null);
  assert.equal((none.get('schema D', () => 'module.exports = () => "d"') as () => string)(), 'd');
  assert.equal(
    files().some((f) => readFileSync(join(dir, f), 'utf8').includes('"d"')),
    false,
  );
});
