import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** One answer of a name lookup, as `dns.lookup(name, { all: true })` gives it. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses; tests pass their own to play DNS rebinding. */
export type Resolve = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolve: Resolve = async (hostname) =>
  (await lookup(hostname, { all: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/**
 * Only global unicast may be called: ipaddr.js names every special-purpose range of the IANA
 * registries (loopback, private, CGNAT, link-local, reserved, documentation, NAT64, 6to4, Teredo,
 * IPv4-mapped, site-local, ...) and calls the rest `unicast`; for IPv6 the rest must also lie in
 * 2000::/3, which leaves out the IPv4-compatible ::a.b.c.d and every unassigned prefix.
 */
export function isGlobalUnicast(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.parse(address);
  if (ip.range() !== 'unicast') return false;
  return ip.kind() === 'ipv4' || ip.match(GLOBAL_UNICAST_V6);
}

/** A webhook URL that may be called, with the addresses it may be called at: nothing else is connected to. */
export interface VettedTarget {
  url: URL;
  addresses: [ResolvedAddress, ...ResolvedAddress[]];
}

/**
 * Whether `raw` may be used as a webhook URL (or any URL the service fetches: a model import's),
 * and at which addresses; `allowListName` names the setting `allowedHosts` came from. Its host is resolved once
 * here; the caller connects to these addresses only (see webhook-request.ts), so a name that
 * resolves elsewhere a second later (DNS rebinding) cannot redirect the call. `allowedHosts`
 * holds `host` or `host:port` entries (WEBHOOK_ALLOWED_HOSTS) that may resolve anywhere.
 */
export async function vetWebhookUrl(
  raw: string,
  opts: { allowedHosts: readonly string[]; resolve?: Resolve; allowListName?: string },
): Promise<{ target: VettedTarget } | { problem: string }> {
  const allowList = opts.allowListName ?? 'WEBHOOK_ALLOWED_HOSTS';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: 'is not a valid absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `must use http or https, not ${url.protocol.replace(':', '')}` };
  if (url.username || url.password)
    return { problem: `must not carry credentials${allowList === 'WEBHOOK_ALLOWED_HOSTS' ? '; use the webhook secret to authenticate deliveries' : ''}` };
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  let addresses: ResolvedAddress[];
  try {
    const family = isIP(host);
    addresses = family ? [{ address: host, family: family === 6 ? 6 : 4 }] : await (opts.resolve ?? systemResolve)(host);
  } catch {
    return { problem: `its host ${host} does not resolve` };
  }
  const [first, ...rest] = addresses;
  if (!first) return { problem: `its host ${host} does not resolve` };
  const target: VettedTarget = { url, addresses: [first, ...rest] };
  if (opts.allowedHosts.includes(host) || opts.allowedHosts.includes(`${host}:${port}`)) return { target };
  const bad = addresses.find((a) => !isGlobalUnicast(a.address));
  if (bad) {
    return {
      problem: `resolves to ${bad.address}, which is not a global unicast address (loopback, private, link-local, reserved or a translated form of one); list "${host}:${port}" in ${allowList} to allow it`,
    };
  }
  return { target };
}

/** Why `raw` may not be used as a webhook URL, or null when it may (the check a job spec gets when it is created). */
export async function webhookUrlProblem(raw: string, allowedHosts: readonly string[]): Promise<string | null> {
  const vetted = await vetWebhookUrl(raw, { allowedHosts });
  return 'problem' in vetted ? vetted.problem : null;
}
