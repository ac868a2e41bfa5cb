/**
 * Watches a request body, whether a route reads it itself (multipart uploads, prediction images)
 * or fastify parses it (JSON, watchParsedBodies), and gives up on one that cannot end or would take
 * too long: its connection closed, it sent nothing for UPLOAD_IDLE_TIMEOUT_SECONDS, or, once it has
 * run UPLOAD_RATE_GRACE_SECONDS, its average rate fell below UPLOAD_MIN_BYTES_PER_SECOND (a client
 * trickling a byte now and then never goes silent, and would otherwise hold what its request
 * holds, such as a model check slot, its socket and the bytes buffered so far, for hours).
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { PassThrough, Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest, RequestPayload } from 'fastify';
import type { Config } from '../config.js';
import { HttpProblem } from '../plugins/problem.js';

/** What a watched body must keep up with: the UPLOAD_* settings. */
export type BodyBounds = Pick<Config, 'uploadIdleTimeoutSeconds' | 'uploadMinBytesPerSecond' | 'uploadRateGraceSeconds'>;

export interface BodyWatch {
  /** aborted, with the problem as its reason, when the body cannot be read to its end */
  signal: AbortSignal;
  /** rejects with that problem */
  ended: Promise<never>;
  /** `p`, or that problem if it comes first: for reads of a parser that may miss the request's end */
  race<T>(p: Promise<T>): Promise<T>;
  stop(): void;
}

const stalled = (seconds: number) =>
  new HttpProblem(
    408,
    'upload_stalled',
    'Request body stalled',
    `no bytes of the request body arrived for ${seconds} s, the longest this service waits (UPLOAD_IDLE_TIMEOUT_SECONDS); the request was not acted on and the connection is closed`,
  );

const tooSlow = (bytes: number, seconds: number, bounds: BodyBounds) =>
  new HttpProblem(
    408,
    'upload_too_slow',
    'Request body too slow',
    `${bytes} bytes of the request body arrived in ${seconds.toFixed(1)} s, ${(bytes / seconds).toFixed(1)} bytes/s on average; after its first ` +
      `${bounds.uploadRateGraceSeconds} s (UPLOAD_RATE_GRACE_SECONDS) a body must keep at least ${bounds.uploadMinBytesPerSecond} bytes/s ` +
      '(UPLOAD_MIN_BYTES_PER_SECOND); the request was not acted on and the connection is closed',
  );

// nobody reads this answer; it names the cause in the log
const aborted = () =>
  new HttpProblem(400, 'upload_aborted', 'Request body aborted', 'the connection closed before the body ended; the request was not acted on');

/**
 * Watches the request's body from here on. The connection may have closed already, while the
 * route awaited something: @fastify/multipart listens for 'close' only from the first part asked
 * for, and a request destroyed before then leaves its parser waiting for bytes that never come.
 *
 * Both the idle timer and the rate count the client's time only: from when the parser starts
 * reading (bytes the client sent while the route awaited are not late), not once every byte is
 * in, and not while the request is paused because we are slow to write what came. The rate is
 * checked as bytes arrive: a client that sends none is the idle timer's, so a trickle is refused
 * at its first bytes after the grace period in which its average is too low, at most
 * UPLOAD_IDLE_TIMEOUT_SECONDS after the average fell.
 */
export function watchBody(raw: IncomingMessage, bounds: BodyBounds): BodyWatch {
  const ac = new AbortController();
  const ended = new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason as HttpProblem), { once: true }));
  // awaited only while a read is raced; an abort at another time is seen through the signal
  ended.catch(() => undefined);
  const onClose = () => {
    if (!raw.readableEnded) ac.abort(aborted());
  };
  const idleSeconds = bounds.uploadIdleTimeoutSeconds;
  const timer = setTimeout(() => {
    if (raw.complete) return;
    if (raw.isPaused()) return void timer.refresh();
    ac.abort(stalled(idleSeconds));
  }, idleSeconds * 1000);

  // the client's clock: started when the parser has the request flowing, stopped while we pause it
  let startedAt: number | undefined;
  let pausedAt: number | undefined;
  let pausedMs = 0;
  let bytes = 0;
  const arrived = (chunk: Buffer) => {
    timer.refresh();
    bytes += chunk.length;
    if (bounds.uploadMinBytesPerSecond === 0 || startedAt === undefined) return;
    const now = performance.now();
    const seconds = (now - startedAt - pausedMs - (pausedAt === undefined ? 0 : now - pausedAt)) / 1000;
    if (seconds > bounds.uploadRateGraceSeconds && bytes < bounds.uploadMinBytesPerSecond * seconds) ac.abort(tooSlow(bytes, seconds, bounds));
  };
  const paused = () => {
    pausedAt ??= performance.now();
  };
  const resumed = () => {
    // 'resume' is emitted a tick after resume(): a pause() in between makes it stale
    if (raw.isPaused()) return;
    const now = performance.now();
    if (startedAt === undefined) {
      startedAt = now;
      pausedAt = undefined;
      // a 'data' listener of our own would start the flow, and what flowed before the form's
      // parser reads the request would be lost to it: count from when the parser has it flowing
      raw.on('data', arrived);
    } else if (pausedAt !== undefined) {
      pausedMs += now - pausedAt;
      pausedAt = undefined;
    }
  };
  raw.on('pause', paused);
  raw.on('resume', resumed);
  if (raw.readableFlowing) resumed();
  raw.on('close', onClose);
  if (raw.destroyed) onClose();
  return {
    signal: ac.signal,
    ended,
    race: (p) => Promise.race([p, ended]),
    stop() {
      clearTimeout(timer);
      raw.off('close', onClose);
      raw.off('pause', paused);
      raw.off('resume', resumed);
      raw.off('data', arrived);
    },
  };
}

const MULTIPART = /^\s*multipart\//i;

/** The body of a request destroyed before it was read: its reader is told the connection closed. */
function failRead(this: Readable) {
  this.destroy(aborted());
}

/**
 * A preParsing hook putting every body fastify reads itself (JSON) under watchBody: its
 * requestTimeout is off, so a client that declared a content-length and then stalls or trickles
 * would keep its socket and the bytes buffered so far for ever. The parser reads the body through
 * a stream of ours, which the watch fails with its problem: the parser's error, answered as that
 * problem with the connection closed. Multipart forms are read by their routes under a watch of
 * their own (receiveUpload, the predict route), not watched twice.
 *
 * A request whose connection closed while the onRequest hooks awaited (a slow Redis behind the
 * rate limit, say) is destroyed already: its stream dropped the bytes it held, whole body or not,
 * and will neither end nor fail for the parser, whose request would then never be answered. Its
 * parser reads a stream that fails with `aborted` instead; a request without a body, which fastify
 * does not read, is handled as before.
 */
export function watchParsedBodies(bounds: BodyBounds) {
  return (req: FastifyRequest, reply: FastifyReply, payload: RequestPayload, done: (err: null, payload: RequestPayload) => void) => {
    const raw = req.raw;
    if (req.method === 'GET' || req.method === 'HEAD' || MULTIPART.test(req.headers['content-type'] ?? '')) return done(null, payload);
    // failing when read, not before: a request without a body is not read, and goes on as before
    if (raw.destroyed) return done(null, new Readable({ read: failRead }));
    // `complete` is false only while a socket's body is still to come: most small bodies arrive
    // with their headers, and inject's requests are in memory
    if (raw.complete !== false) return done(null, payload);
    const body = new PassThrough();
    // once the parser has failed the body (too large, say) it no longer listens: nothing to tell it
    body.on('error', () => undefined);
    payload.pipe(body);
    const watch = watchBody(raw, bounds);
    const stop = () => {
      watch.stop();
      watch.signal.removeEventListener('abort', fail);
      raw.off('end', stop);
      reply.raw.off('close', stop);
      // refused, or answered before the body was read (415, 413): what is left of it is drained as
      // Node drains a body nobody reads, not held back by a stream nobody reads either
      if (!raw.readableEnded) {
        payload.unpipe(body);
        payload.resume();
      }
    };
    const fail = () => {
      stop();
      if (!reply.sent) body.destroy(watch.signal.reason as HttpProblem);
    };
    watch.signal.addEventListener('abort', fail, { once: true });
    raw.once('end', stop);
    reply.raw.once('close', stop);
    done(null, body);
  };
}
