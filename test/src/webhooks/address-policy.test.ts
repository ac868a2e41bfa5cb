import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isGlobalUnicast, vetWebhookUrl, type Resolve } from '../../../src/webhooks/address-policy.js';

const answering =
  (...addresses: string[]): Resolve =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

test('only global unicast passes: loopback, private and every translated or embedded form of them are refused', () => {
  const refused = [
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254',
    '0.0.0.0',
    '255.255.255.255',
    '224.0.0.1',
    '192.0.2.1',
    '198.18.0.1',
    '::',
    '::1',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::127.0.0.1',
    '::7f00:1', // IPv4-compatible
    '::ffff:127.0.0.1',
    '::ffff:8.8.8.8', // IPv4-mapped, even of a global address: the policy is on what is written
    '64:ff9b::7f00:1',
    '64:ff9b:1::a00:1', // NAT64
    '2002:7f00:1::1', // 6to4
    '2001::1', // Teredo
    'fec0::1', // site-local
    '2001:db8::1',
    '100::1',
    '5f00::1',
    '4000::1',
    'not an address',
  ];
  for (const a of refused) assert.equal(isGlobalUnicast(a), false, a);
  for (const a of ['8.8.8.8', '1.1.1.1', '93.184.215.14', '2606:4700:4700::1111', '2a00:1450:4001:82b::200e']) assert.equal(isGlobalUnicast(a), true, a);
});

test('a URL is refused when any address its name resolves to is not global, and says how to allow it', async () => {
  for (const url of [
    'http://[::127.0.0.1]/x',
    'http://[64:ff9b::7f00:1]/x',
    'http://[2002:7f00:1::1]/x',
    'http://[fec0::1]/x',
    'http://[::ffff:7f00:1]/x',
    'http://2130706433/x',
  ]) {
    const vetted = await vetWebhookUrl(url, { allowedHosts: [] });
    assert.ok('problem' in vetted, url);
    assert.match(vetted.problem, /not a global unicast address.*WEBHOOK_ALLOWED_HOSTS/, url);
  }
  const mixed = await vetWebhookUrl('https://hooks.example/x', { allowedHosts: [], resolve: answering('93.184.215.14', '10.0.0.5') });
  assert.ok('problem' in mixed && mixed.problem.includes('10.0.0.5'), JSON.stringify(mixed));
  const nowhere = await vetWebhookUrl('https://hooks.example/x', { allowedHosts: [], resolve: answering() });
  assert.ok('problem' in nowhere && /does not resolve/.test(nowhere.problem));
});

test('a global name passes with the addresses it was vetted at; an allow-listed host passes wherever it resolves', async () => {
  const global = await vetWebhookUrl('https://hooks.example/x', { allowedHosts: [], resolve: answering('93.184.215.14', '2606:4700:4700::1111') });
  assert.ok('target' in global);
  assert.deepEqual(global.target.addresses, [
    { address: '93.184.215.14', family: 4 },
    { address: '2606:4700:4700::1111', family: 6 },
  ]);
  const listed = await vetWebhookUrl('http://hooks.internal:8080/x', { allowedHosts: ['hooks.internal:8080'], resolve: answering('10.0.0.5') });
  assert.ok('target' in listed);
  const otherPort = await vetWebhookUrl('http://hooks.internal:9090/x', { allowedHosts: ['hooks.internal:8080'], resolve: answering('10.0.0.5') });
  assert.ok('problem' in otherPort, 'a host:port entry allows that port only');
});
