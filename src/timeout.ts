/**
 * A promise that rejects when `p` has not settled within `ms` (for calls to Redis and the store,
 * whose clients may wait forever while their server is away). `p` itself goes on; its timer is
 * cleared as soon as it settles, so nothing keeps the process alive.
 */
export function withTimeout<T>(p: Promise<T>, opts: { ms: number; what: string }): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, fail) => (timer = setTimeout(() => fail(new Error(`${opts.what} timed out after ${opts.ms} ms`)), opts.ms))),
  ]);
}
