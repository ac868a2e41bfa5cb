#!/usr/bin/env node
/**
 * tfjs-adapt: the command line client of the service. Exit codes: 0 done (and, when
 * following, the job succeeded); 1 the job failed or was cancelled, the API refused the
 * request, or the service could not be reached; 2 the command line was wrong.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PROJECT_ROOT } from '../paths.js';
import { ApiClient, ApiError, ConnectionError } from './api-client.js';
import { datasetsList, datasetsUpload } from './commands/datasets.js';
import { jobsCancel, jobsFollow, jobsGet, jobsList } from './commands/jobs.js';
import { modelsDownload } from './commands/models.js';
import { predict } from './commands/predict.js';
import { submit } from './commands/submit.js';
import { sweepCancel, sweepCreate, sweepGet, sweepList } from './commands/sweeps.js';
import type { Command, Context } from './context.js';
import { UsageError } from './usage-error.js';

const DEFAULT_URL = 'http://127.0.0.1:8080';

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
  json: { type: 'boolean' },
  progress: { type: 'string' },
  'idempotency-key': { type: 'string' },
  status: { type: 'string' },
  type: { type: 'string' },
  limit: { type: 'string' },
  name: { type: 'string' },
  format: { type: 'string' },
  field: { type: 'string', multiple: true },
  wait: { type: 'boolean' },
  image: { type: 'string', multiple: true },
  'top-k': { type: 'string' },
  dataset: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

type OptionName = keyof typeof OPTIONS;

interface CommandSpec {
  run: Command;
  usage: string;
  /** the options it takes besides the global ones */
  options: OptionName[];
}

const COMMANDS: Record<string, CommandSpec> = {
  submit: {
    run: submit,
    usage: 'submit <spec.json|-> [--follow] [--progress auto|bars|lines|none] [--json] [--idempotency-key <key>]',
    options: ['follow', 'progress', 'json', 'idempotency-key'],
  },
  'jobs list': { run: jobsList, usage: 'jobs list [--status <status>] [--type <type>] [--limit <n>] [--json]', options: ['status', 'type', 'limit', 'json'] },
  'jobs get': { run: jobsGet, usage: 'jobs get <job id>', options: [] },
  'jobs cancel': { run: jobsCancel, usage: 'jobs cancel <job id>', options: [] },
  'jobs follow': { run: jobsFollow, usage: 'jobs follow <job id> [--progress auto|bars|lines|none] [--json]', options: ['progress', 'json'] },
  'datasets upload': {
    run: datasetsUpload,
    usage: 'datasets upload <file> | <images.idx> <labels.idx> --name <name> [--format csv|jsonl|idx|images] [--field key=value ...] [--wait]',
    options: ['name', 'format', 'field', 'wait'],
  },
  'datasets list': { run: datasetsList, usage: 'datasets list [--limit <n>] [--json]', options: ['limit', 'json'] },
  'sweep create': { run: sweepCreate, usage: 'sweep create <sweep.json|-> [--wait] [--json]', options: ['wait', 'json'] },
  'sweep get': { run: sweepGet, usage: 'sweep get <sweep id> [--wait] [--json]', options: ['wait', 'json'] },
  'sweep list': { run: sweepList, usage: 'sweep list [--status <status>] [--limit <n>] [--json]', options: ['status', 'limit', 'json'] },
  'sweep cancel': { run: sweepCancel, usage: 'sweep cancel <sweep id>', options: [] },
  'models download': { run: modelsDownload, usage: 'models download <model id> <dir>', options: [] },
  predict: {
    run: predict,
    usage:
      'predict <model id> (--image <file> [--image <file> ...] | --json <examples.json> | --dataset <dataset id> [--format jsonl|csv] [--out <file>] [--progress auto|bars|lines|none]) [--top-k <k>]',
    options: ['image', 'json', 'top-k', 'dataset', 'format', 'out', 'progress'],
  },
};

/** Commands of one word; the others are "<group> <subcommand>". */
const SINGLE_WORD = ['submit', 'predict'];

const GLOBAL: OptionName[] = ['url', 'token', 'help', 'version'];

function helpText(): string {
  return [
    'usage: tfjs-adapt <command> [options]',
    '',
    ...Object.values(COMMANDS).map((c) => `  tfjs-adapt ${c.usage}`),
    '',
    'global options:',
    `  --url <url>      the service (env TFJS_ADAPT_URL; default ${DEFAULT_URL})`,
    '  --token <token>  sent as Authorization: Bearer <token> (env TFJS_ADAPT_TOKEN)',
    '  --help, --version',
    '',
    'exit codes: 0 ok; 1 the job failed or was cancelled, or the request failed; 2 wrong usage',
  ].join('\n');
}

function version(): string {
  return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export interface Io {
  stdout: Context['stdout'];
  stderr: Context['stderr'];
  env: NodeJS.ProcessEnv;
}

/** Runs one command line; returns the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr.write(`tfjs-adapt: ${(err as Error).message}\n\n${helpText()}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const [word, sub] = positionals;
  const key = SINGLE_WORD.includes(word ?? '') ? word : `${word} ${sub}`;
  const spec = COMMANDS[key];
  if (values.help || !word) {
    (values.help ? io.stdout : io.stderr).write(`${spec ? `usage: tfjs-adapt ${spec.usage}` : helpText()}\n`);
    return values.help ? 0 : 2;
  }
  if (!spec) {
    const groups = [...new Set(Object.keys(COMMANDS).map((k) => k.split(' ')[0]))];
    const subs = Object.keys(COMMANDS)
      .filter((k) => k.startsWith(`${word} `))
      .map((k) => k.split(' ')[1]);
    const what =
      subs.length > 0
        ? sub === undefined
          ? `"${word}" needs a subcommand: one of ${subs.join(', ')}`
          : `unknown subcommand ${JSON.stringify(sub)} of "${word}"; expected one of ${subs.join(', ')}`
        : `unknown command ${JSON.stringify(word)}; expected one of ${groups.join(', ')}`;
    io.stderr.write(`tfjs-adapt: ${what}\n\n${helpText()}\n`);
    return 2;
  }
  const misplaced = (Object.keys(values) as OptionName[]).filter((o) => !GLOBAL.includes(o) && !spec.options.includes(o));
  if (misplaced.length > 0) {
    io.stderr.write(`tfjs-adapt: ${misplaced.map((o) => `--${o}`).join(', ')} does not apply to "${key}"\nusage: tfjs-adapt ${spec.usage}\n`);
    return 2;
  }

  const url = values.url ?? io.env.TFJS_ADAPT_URL ?? DEFAULT_URL;
  try {
    new URL(url);
  } catch {
    io.stderr.write(`tfjs-adapt: --url ${JSON.stringify(url)} is not a URL; expected e.g. ${DEFAULT_URL}\n`);
    return 2;
  }
  const token = values.token ?? io.env.TFJS_ADAPT_TOKEN;
  const ctx: Context = {
    client: new ApiClient({ url, ...(token ? { token } : {}) }),
    args: positionals.slice(SINGLE_WORD.includes(key) ? 1 : 2),
    options: values,
    stdout: io.stdout,
    stderr: io.stderr,
  };
  try {
    return await spec.run(ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`tfjs-adapt: ${err.message}\nusage: tfjs-adapt ${spec.usage}\n`);
      return 2;
    }
    if (err instanceof ApiError || err instanceof ConnectionError) {
      io.stderr.write(`tfjs-adapt: ${err.message}\n`);
      return 1;
    }
    io.stderr.write(`tfjs-adapt: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`tfjs-adapt: ${(err as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
}
