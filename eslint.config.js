// `npm run lint`: typescript-eslint's type-checked recommended rules over the TypeScript of every
// process, with the few changes below, each for a pattern this codebase uses on purpose.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * no-unnecessary-type-assertion without its "type arguments may be inferred from the assertion"
 * report: that one asks to write tfjs's rank claims (`tf.reshape(x, s) as tf.Tensor4D`) as
 * `tf.reshape<tf.Rank.R4>(x, s)`, the same unchecked claim spelled another way. Its other reports
 * (an assertion or `!` that changes nothing) stay errors. A filter here, as the rule has no option for it.
 */
const unnecessaryAssertion = tseslint.plugin.rules['no-unnecessary-type-assertion'];
const withoutInferredTypeArguments = {
  ...unnecessaryAssertion,
  create: (context) =>
    unnecessaryAssertion.create(Object.create(context, { report: { value: (d) => d.messageId === 'contextuallyInferredTypeArguments' || context.report(d) } })),
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/dashboard/**', 'bench/peers/**', '*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { local: { rules: { 'no-unnecessary-type-assertion': withoutInferredTypeArguments } } },
    rules: {
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      'local/no-unnecessary-type-assertion': 'error',
      // fastify plugins, hooks and handlers are async by contract (no `done` callback), with an await or not
      '@typescript-eslint/require-await': 'off',
      // node:test's test(), describe() and their hooks return promises the runner itself awaits
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      // shapes are written `[${shape}]` on purpose: an array of numbers joins as 28,28,1
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowAny: true, allowBoolean: true, allowNullish: true, allowNumber: true, allowRegExp: true, allowArray: true },
      ],
      // `_`-prefixed names are kept on purpose: parameters a signature requires, properties a rest pattern leaves out
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // tfjs, bullmq, ioredis, fastify, @fastify/static and fast-json-stringify are loaded with
      // `import x = require(...)` (TypeScript emits createRequire): an ES import of a CommonJS package
      // makes Node scan its source for export names (cjs-module-lexer), following every re-export,
      // before running it: ~350 ms of CPU in every process that loads tfjs's ~5 MB of bundles, ~200 ms
      // for bullmq's many re-exporting files, 40-50 ms for each of the others
      '@typescript-eslint/no-require-imports': ['error', { allowAsImport: true }],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportDeclaration[importKind="value"][source.value=/^@tensorflow\\u002F/]',
          message: "load tfjs with `import tf = require('@tensorflow/tfjs')` (why: eslint.config.js)",
        },
        {
          selector: 'ImportDeclaration[importKind="value"][source.value=/^(bullmq|ioredis|fastify|@fastify\\u002Fstatic|fast-json-stringify)$/]',
          message: "load this CommonJS package with `import x = require('...')` (why: eslint.config.js)",
        },
      ],
    },
  },
  {
    // tests, benchmarks and the CLI read the API's JSON answers (`any` at the HTTP edge) and check
    // them field by field; typing every answer would restate the OpenAPI document in each file
    files: ['test/**/*.ts', 'bench/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'local/no-unnecessary-type-assertion': 'off' },
  },
);
