/**
 * Receives a multipart/form-data upload: every file part streams to its own file in `dir`
 * (never held in memory), text fields are collected. Enforces the upload cap as bytes arrive, and
 * gives up on a body that cannot end: its connection closed, or it stalled (UPLOAD_IDLE_TIMEOUT_SECONDS).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { HttpProblem } from '../plugins/problem.js';

export interface ReceivedFile {
  field: string;
  /** the client's file name, for display and for matching weight shards; never a path we use */
  filename: string;
  path: string;
  bytes: number;
}

export interface ReceivedUpload {
  fields: Map<string, string[]>;
  files: ReceivedFile[];
}

const FIELD_BYTES = 1 << 20;
/** room for boundaries, part headers and text fields in a request that is otherwise at the cap */
const FORM_OVERHEAD = 1 << 20;

export const tooLarge = (limit: number) =>
  new HttpProblem(
    413,
    'upload_too_large',
    'Upload too large',
    `the upload is larger than ${limit} bytes, the limit of this service (UPLOAD_LIMIT_BYTES); nothing was stored`,
  );

const stalled = (seconds: number) =>
  new HttpProblem(
    408,
    'upload_stalled',
    'Upload stalled',
    `no bytes of the upload arrived for ${seconds} s, the longest this service waits (UPLOAD_IDLE_TIMEOUT_SECONDS); nothing was stored and the connection is closed`,
  );

// nobody reads this answer; it names the cause in the log
const aborted = () => new HttpProblem(400, 'upload_aborted', 'Upload aborted', 'the connection closed before the body ended; nothing was stored');

interface BodyWatch {
  /** aborted, with the problem as its reason, when the body cannot be read to its end */
  signal: AbortSignal;
  /** rejects with that problem */
  ended: Promise<never>;
  stop(): void;
}

/**
 * Watches the request's body from here on. The connection may have closed already, while the
 * route awaited something: @fastify/multipart listens for 'close' only from the first part asked
 * for, and a request destroyed before then leaves its parser waiting for bytes that never come.
 * The idle timer counts the client's silence only: not once every byte is in, nor while the
 * request is paused because we are slow to write what came.
 */
function watchBody(raw: IncomingMessage, idleSeconds: number): BodyWatch {
  const ac = new AbortController();
  const ended = new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason as HttpProblem), { once: true }));
  // awaited only while a part is awaited; an abort at another time is seen through the signal
  ended.catch(() => undefined);
  const onClose = () => {
    if (!raw.readableEnded) ac.abort(aborted());
  };
  const timer = setTimeout(() => {
    if (raw.complete) return;
    if (raw.isPaused()) return void timer.refresh();
    ac.abort(stalled(idleSeconds));
  }, idleSeconds * 1000);
  const arrived = () => timer.refresh();
  // a 'data' listener of our own would start the flow, and what flowed before the form's parser
  // reads the request would be lost to it: count from when the parser has it flowing
  const count = () => raw.on('data', arrived);
  if (raw.readableFlowing) count();
  else raw.once('resume', count);
  raw.on('close', onClose);
  if (raw.destroyed) onClose();
  return {
    signal: ac.signal,
    ended,
    stop() {
      clearTimeout(timer);
      raw.off('close', onClose);
      raw.off('resume', count);
      raw.off('data', arrived);
    },
  };
}

export async function receiveUpload(
  req: FastifyRequest,
  dir: string,
  bounds: Pick<Config, 'uploadLimitBytes' | 'uploadIdleTimeoutSeconds'>,
): Promise<ReceivedUpload> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > bounds.uploadLimitBytes + FORM_OVERHEAD) throw tooLarge(bounds.uploadLimitBytes);
  const body = watchBody(req.raw, bounds.uploadIdleTimeoutSeconds);
  try {
    await mkdir(dir, { recursive: true });
    return await readForm(req, dir, bounds.uploadLimitBytes, body);
  } finally {
    body.stop();
  }
}

async function readForm(req: FastifyRequest, dir: string, limitBytes: number, body: BodyWatch): Promise<ReceivedUpload> {
  const fields = new Map<string, string[]>();
  const files: ReceivedFile[] = [];
  let total = 0;
  try {
    const parts = req.parts({ limits: { fileSize: limitBytes, fieldSize: FIELD_BYTES, fields: 64, files: 256, parts: 512 } })[Symbol.asyncIterator]();
    for (;;) {
      // raced, not awaited alone: a parser that missed the request's close waits for a part forever (watchBody)
      const next = await Promise.race([parts.next(), body.ended]);
      if (next.done) break;
      const part = next.value;
      if (part.type === 'field') {
        if (part.valueTruncated) {
          throw new HttpProblem(
            400,
            'validation',
            'The request is not valid',
            `form field ${part.fieldname} is longer than ${FIELD_BYTES} bytes; send large content as a file`,
            [{ pointer: `/${part.fieldname}`, in: 'body', detail: `is longer than ${FIELD_BYTES} bytes` }],
          );
        }
        const list = fields.get(part.fieldname) ?? [];
        list.push(String(part.value));
        fields.set(part.fieldname, list);
        continue;
      }
      const path = join(dir, `part-${files.length}`);
      let bytes = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          total += chunk.length;
          done(total > limitBytes ? tooLarge(limitBytes) : null, chunk);
        },
      });
      await pipeline(part.file, counter, createWriteStream(path), { signal: body.signal });
      if (part.file.truncated) throw tooLarge(limitBytes);
      files.push({ field: part.fieldname, filename: part.filename, path, bytes });
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    if (err instanceof HttpProblem) throw err;
    if (body.signal.aborted) throw body.signal.reason as HttpProblem;
    const { statusCode, code } = err as { statusCode?: number; code?: string };
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(limitBytes);
    if (statusCode === 413) {
      throw new HttpProblem(
        413,
        'too_many_parts',
        'Too many form parts',
        `the form has more parts than allowed (at most 64 fields and 256 files): ${(err as Error).message}`,
      );
    }
    throw new HttpProblem(400, 'invalid_multipart', 'Invalid multipart body', `the multipart/form-data body could not be read: ${(err as Error).message}`);
  }
  return { fields, files };
}
