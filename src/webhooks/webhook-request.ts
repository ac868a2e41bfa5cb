/**
 * One webhook POST, sent to the addresses its URL was vetted at and nowhere else. Node's own
 * http/https clients take a `lookup` per request, which is all pinning needs (fetch would
 * resolve the name again; undici's Agent would do the same as this at the price of a
 * dependency whose current major needs Node 22). The Host header and the TLS server name
 * stay the URL's host, so virtual hosting and certificate checks work as with any client.
 */
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { vetWebhookUrl, type Resolve, type ResolvedAddress, type VettedTarget } from './address-policy.js';

/** A lookup that answers every name with the vetted addresses, in both of the forms net.connect asks for. */
export function pinnedLookup(target: VettedTarget): LookupFunction {
  return (_hostname, options, callback) => {
    const [first] = target.addresses;
    if ((options as { all?: boolean }).all) (callback as (err: null, addresses: ResolvedAddress[]) => void)(null, target.addresses);
    else callback(null, first.address, first.family);
  };
}

/** POSTs `body` to the vetted target; resolves with the status of the answer, rejects on a network error or timeout. */
function post(target: VettedTarget, opts: { body: string; headers: Record<string, string>; timeoutMs: number }): Promise<number> {
  const { url } = target;
  const options: RequestOptions = {
    method: 'POST',
    headers: { ...opts.headers, 'content-length': String(Buffer.byteLength(opts.body)) },
    lookup: pinnedLookup(target),
    signal: AbortSignal.timeout(opts.timeoutMs),
    // one connection per delivery: a pooled socket could have been opened for another target
    agent: false,
  };
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res) => {
      // only the status matters; the body is read away unlooked-at so the socket can close
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export type WebhookOutcome = { refused: string } | { status: number };

/**
 * Vets `rawUrl` (resolving its host once) and POSTs to the addresses that passed. `refused` says
 * why the URL may not be called now; a network error or timeout rejects, so the caller retries.
 */
export async function sendWebhook(
  rawUrl: string,
  opts: { allowedHosts: readonly string[]; resolve?: Resolve; body: string; headers: Record<string, string>; timeoutMs: number },
): Promise<WebhookOutcome> {
  const vetted = await vetWebhookUrl(rawUrl, { allowedHosts: opts.allowedHosts, ...(opts.resolve ? { resolve: opts.resolve } : {}) });
  if ('problem' in vetted) return { refused: vetted.problem };
  return { status: await post(vetted.target, opts) };
}
