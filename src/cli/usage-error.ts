/** Wrong use of the command line: the CLI prints it with the usage line and exits with 2. */
export class UsageError extends Error {}
