import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

// Addresses a webhook must not reach unless its host is explicitly allowed: otherwise a
// job spec could make the service call into its own network (SSRF).
const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) blocked.addSubnet(net, bits, 'ipv6');

function isBlocked(address: string): boolean {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4mapped) return blocked.check(v4mapped[1]!, 'ipv4');
  return blocked.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Why `raw` may not be used as a webhook URL, or null when it may. `allowedHosts` holds
 * `host` or `host:port` entries (WEBHOOK_ALLOWED_HOSTS) that may be private or loopback.
 */
export async function webhookUrlProblem(raw: string, allowedHosts: readonly string[]): Promise<string | null> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a valid absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must use http or https, not ${url.protocol.replace(':', '')}`;
  if (url.username || url.password) return 'must not carry credentials; use the webhook secret to authenticate deliveries';
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  if (allowedHosts.includes(host) || allowedHosts.includes(`${host}:${port}`)) return null;
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return `its host ${host} does not resolve`;
  }
  const bad = addresses.find(isBlocked);
  return bad ? `resolves to ${bad}, a loopback, private or reserved address; list "${host}:${port}" in WEBHOOK_ALLOWED_HOSTS to allow it` : null;
}
