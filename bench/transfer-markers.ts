/** The markers of bench:transfer's section in docs/benchmarks.md, which bench:quality keeps when it rewrites the file. */
export const TRANSFER_START = '<!-- bench:transfer start -->';
export const TRANSFER_END = '<!-- bench:transfer end -->';
