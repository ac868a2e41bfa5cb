/**
 * GETs one file of a model import (`source.url`) to disk under the webhooks' address policy: the
 * host is resolved once and only its vetted global-unicast addresses are connected to (see
 * src/webhooks/address-policy.ts), every redirect is vetted again and at most MAX_REDIRECTS are
 * followed, and the body is cut off past `maxBytes`. Node's http client for the same reason as
 * webhook-request.ts: it takes a pinned lookup per request.
 */
import { createWriteStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { vetWebhookUrl, type Resolve, type VettedTarget } from '../../webhooks/address-policy.js';
import { pinnedLookup } from '../../webhooks/webhook-request.js';

export const MAX_REDIRECTS = 3;

/** Why a file could not be fetched, said of its URL. */
export class FetchRefused extends Error {}

export interface FetchOptions {
  allowedHosts: readonly string[];
  /** the most bytes the body may have */
  maxBytes: number;
  timeoutMs: number;
  resolve?: Resolve;
}

function get(target: VettedTarget, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (target.url.protocol === 'https:' ? httpsRequest : httpRequest)(
      target.url,
      { method: 'GET', lookup: pinnedLookup(target), signal: AbortSignal.timeout(timeoutMs), agent: false },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
}

/** Fetches `rawUrl` into the file `to`; resolves with the URL it finally came from (after redirects) and its size. */
export async function fetchToFile(rawUrl: string, to: string, o: FetchOptions): Promise<{ url: URL; bytes: number }> {
  let current = rawUrl;
  for (let hop = 0; ; hop++) {
    const vetted = await vetWebhookUrl(current, {
      allowedHosts: o.allowedHosts,
      allowListName: 'MODEL_IMPORT_ALLOWED_HOSTS',
      ...(o.resolve ? { resolve: o.resolve } : {}),
    });
    if ('problem' in vetted) throw new FetchRefused(`${current} ${vetted.problem}`);
    let res: IncomingMessage;
    try {
      res = await get(vetted.target, o.timeoutMs);
    } catch (err) {
      throw new FetchRefused(`${current} could not be fetched: ${(err as Error).message}`);
    }
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop === MAX_REDIRECTS) throw new FetchRefused(`${rawUrl} redirects more than ${MAX_REDIRECTS} times`);
      current = new URL(res.headers.location, vetted.target.url).href;
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new FetchRefused(`${current} answered HTTP ${status}; expected 200`);
    }
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > o.maxBytes) {
      res.destroy();
      throw new FetchRefused(`${current} is ${declared} bytes; at most ${o.maxBytes} may be imported`);
    }
    let bytes = 0;
    const cap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > o.maxBytes) done(new FetchRefused(`${current} is more than ${o.maxBytes} bytes; at most ${o.maxBytes} may be imported`));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(res, cap, createWriteStream(to));
    } catch (err) {
      throw err instanceof FetchRefused ? err : new FetchRefused(`${current} could not be read: ${(err as Error).message}`);
    }
    return { url: vetted.target.url, bytes };
  }
}
