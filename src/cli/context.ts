import type { ApiClient } from './api-client.js';
import { UsageError } from './usage-error.js';

/** Everything a command needs, handed in so tests and main() wire the same commands. */
export interface Context {
  client: ApiClient;
  /** positional arguments after the command words */
  args: string[];
  options: {
    follow?: boolean;
    json?: boolean;
    status?: string;
    type?: string;
    limit?: string;
    name?: string;
    format?: string;
    field?: string[];
    wait?: boolean;
    progress?: string;
    'idempotency-key'?: string;
    image?: string[];
    'top-k'?: string;
    /** predict: the dataset a predict job runs over */
    dataset?: string;
    /** predict --dataset: where the predictions file goes (default stdout) */
    out?: string;
  };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** A command returns its exit code. */
export type Command = (ctx: Context) => Promise<number>;

/** The positional at `i`, or a UsageError naming what is missing. */
export function arg(ctx: Context, i: number, what: string): string {
  const v = ctx.args[i];
  if (v === undefined || v === '') throw new UsageError(`missing ${what}`);
  return v;
}
