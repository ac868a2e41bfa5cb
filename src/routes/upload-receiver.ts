/**
 * Receives a multipart/form-data upload: every file part streams to its own file in `dir`
 * (never held in memory), text fields are collected. Enforces the upload cap as bytes arrive, and
 * gives up on a body that cannot end or would take too long (body-watch.ts): its connection closed,
 * it stalled (UPLOAD_IDLE_TIMEOUT_SECONDS), or it trickles (UPLOAD_MIN_BYTES_PER_SECOND).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { HttpProblem } from '../plugins/problem.js';
import { watchBody, type BodyBounds, type BodyWatch } from './body-watch.js';

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

export async function receiveUpload(req: FastifyRequest, dir: string, bounds: Pick<Config, 'uploadLimitBytes'> & BodyBounds): Promise<ReceivedUpload> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > bounds.uploadLimitBytes + FORM_OVERHEAD) throw tooLarge(bounds.uploadLimitBytes);
  const body = watchBody(req.raw, bounds);
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
      const next = await body.race(parts.next());
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
