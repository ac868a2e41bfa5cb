import type { Redis } from 'ioredis';
import { HttpProblem } from '../plugins/problem.js';
import { withTimeout } from '../timeout.js';

const PING_TIMEOUT_MS = 5000;

/**
 * Cancel and pause reach the queue and the worker through Redis: it is asked first, so a 503 leaves everything as it was.
 * A client that knows it is disconnected answers at once (a PING would wait in its offline queue for the timeout).
 */
export async function requireRedis(redis: Redis): Promise<void> {
  try {
    if (redis.status !== 'ready') throw new Error(`Redis connection is ${redis.status}`);
    await withTimeout(redis.ping(), { ms: PING_TIMEOUT_MS, what: 'asking Redis' });
  } catch {
    throw new HttpProblem(503, 'queue_unavailable', 'Queue unavailable', 'the queue (Redis) is not reachable; nothing was changed, retry later');
  }
}
