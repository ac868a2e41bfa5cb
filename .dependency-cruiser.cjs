/**
 * Import rules of the processes (`npm run lint:imports`; the READMEs of src/, workers/host/ and
 * workers/training/ say the same in prose). Each rule names what it protects.
 */

/** The HTTP layer: the only code that may know HTTP statuses and problem+json. */
const HTTP_LAYER = '^src/(routes|plugins)/|^src/app\\.ts$';

/** What the training child must never load: it only reads its task and reports messages. */
const NOT_FOR_THE_CHILD = [
  '^src/(store|queue|routes|plugins|webhooks|metrics|cli|dashboard)/',
  '^src/(app|server|deps|config)\\.ts$',
  '^workers/host/',
  'node_modules/(fastify|@fastify/|fastify-plugin|@bull-board/|pg/|@electric-sql/pglite|ioredis|prom-client)',
];

/** The one file of src/ that loads tfjs: a child process the API spawns by path (see the rule below). */
const MODEL_CHECK_CHILD = '^src/artifacts/model-upload/check-child\\.ts$';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes load order matter and hides which module owns what.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'child-not-api',
      severity: 'error',
      comment: 'The training child (workers/training) never touches the store, Redis, fastify or the API, directly or through what it imports.',
      from: { path: '^workers/training/' },
      to: { path: NOT_FOR_THE_CHILD, reachable: true },
    },
    {
      name: 'predict-child-not-api',
      severity: 'error',
      comment:
        'The prediction child (workers/predict) reads model files and answers over IPC: no store, Redis, fastify or API, directly or through what it imports.',
      from: { path: '^workers/predict/' },
      to: { path: [...NOT_FOR_THE_CHILD, 'node_modules/bullmq/'], reachable: true },
    },
    {
      name: 'child-not-bullmq-queue',
      severity: 'error',
      comment: "The training child may name BullMQ's sandbox types (SandboxedJob) but loads nothing of BullMQ: queues and workers are the host's.",
      from: { path: '^workers/training/' },
      to: { path: 'node_modules/bullmq/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'api-not-tfjs',
      severity: 'error',
      comment: 'The API never loads TensorFlow.js (memory, start time, native code); a model is checked in a child process of its own.',
      from: { path: '^src/', pathNot: MODEL_CHECK_CHILD },
      to: { path: 'node_modules/@tensorflow/' },
    },
    {
      name: 'model-check-child-by-path-only',
      severity: 'error',
      comment: 'check-child.ts is a separate process: the API starts it by file path, so it stays out of the API import graph (types only).',
      from: { path: '^src/' },
      to: { path: MODEL_CHECK_CHILD, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'api-not-workers',
      severity: 'error',
      comment: 'src/ is the API and what it owns; only the process entry (src/server.ts) starts the worker host beside it.',
      from: { path: '^src/', pathNot: '^src/server\\.ts$' },
      to: { path: '^workers/' },
    },
    {
      name: 'entry-starts-host-only',
      severity: 'error',
      comment: 'The process entry starts the worker host; the training child is forked by the host, by path.',
      from: { path: '^src/server\\.ts$' },
      to: { path: '^workers/', pathNot: '^workers/host/' },
    },
    {
      name: 'host-not-child',
      severity: 'error',
      comment: "The worker host names the training child's entry by file path only; it never loads tfjs.",
      from: { path: '^workers/host/' },
      to: { path: ['^workers/(training|predict)/', 'node_modules/@tensorflow/'] },
    },
    {
      name: 'host-not-http',
      severity: 'error',
      comment: 'The worker host serves no HTTP.',
      from: { path: '^workers/host/' },
      to: { path: [HTTP_LAYER, 'node_modules/(fastify|@fastify/)'] },
    },
    {
      name: 'http-errors-in-http-layer',
      severity: 'error',
      comment:
        'HTTP statuses and problem+json belong to the HTTP layer; other code reports FieldErrors (src/field-error.ts) or errors of its own that the HTTP layer maps.',
      from: { pathNot: HTTP_LAYER },
      to: { path: '^src/plugins/problem\\.ts$' },
    },
    {
      name: 'shared-job-rules-not-http-or-tfjs',
      severity: 'error',
      comment: 'src/jobs runs in every process (API, host, child): no HTTP, no tfjs.',
      from: { path: '^src/jobs/' },
      to: { path: [HTTP_LAYER, 'node_modules/(fastify|@fastify/|@tensorflow/)'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        "An import that does not resolve fails at run time (the dashboard's /ui/vendor/ paths are URLs the server maps to packages: src/plugins/dashboard.ts).",
      from: {},
      to: { couldNotResolve: true, pathNot: '^/ui/vendor/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
};
