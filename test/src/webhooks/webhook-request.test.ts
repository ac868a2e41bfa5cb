import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Resolve } from '../../../src/webhooks/address-policy.js';
import { sendWebhook } from '../../../src/webhooks/webhook-request.js';

interface Hit {
  host: string | undefined;
  body: string;
}

/** A server on one loopback address that records what reaches it. */
function listening(address: string, port: number): Promise<{ server: Server; hits: Hit[] }> {
  const hits: Hit[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hits.push({ host: req.headers.host, body });
      res.statusCode = 204;
      res.end();
    });
  });
  return new Promise((ok, fail) => server.once('error', fail).listen(port, address, () => ok({ server, hits })));
}

let vetted: { server: Server; hits: Hit[] };
let internal: { server: Server; hits: Hit[] };
let port: number;

before(async () => {
  vetted = await listening('127.0.0.1', 0);
  port = (vetted.server.address() as AddressInfo).port;
  // the "internal service" a rebinding name would point at on the second lookup, on the same port
  internal = await listening('127.0.0.2', port);
});
after(() => {
  vetted.server.close();
  internal.server.close();
});

/** A name that answers 127.0.0.1 the first time and 127.0.0.2 after: DNS rebinding. */
function rebinding(): { resolve: Resolve; lookups: () => number } {
  let n = 0;
  return {
    resolve: async () => [{ address: n++ === 0 ? '127.0.0.1' : '127.0.0.2', family: 4 }],
    lookups: () => n,
  };
}

test('the request goes to the address that was vetted: the name is looked up once, a rebinding answer is never used', async () => {
  const dns = rebinding();
  const sent = await sendWebhook(`http://hooks.test:${port}/hook`, {
    allowedHosts: [`hooks.test:${port}`],
    resolve: dns.resolve,
    body: '{"ok":true}',
    headers: { 'content-type': 'application/json' },
    timeoutMs: 10_000,
  });
  assert.deepEqual(sent, { status: 204 });
  assert.equal(dns.lookups(), 1);
  assert.deepEqual(vetted.hits, [{ host: `hooks.test:${port}`, body: '{"ok":true}' }], 'the Host header stays the name');
  assert.deepEqual(internal.hits, []);
});

test('a name that resolves to a refused address is not connected to at all', async () => {
  const before = vetted.hits.length + internal.hits.length;
  const sent = await sendWebhook(`http://hooks.test:${port}/hook`, {
    allowedHosts: [],
    resolve: async () => [{ address: '127.0.0.2', family: 4 }],
    body: '{}',
    headers: {},
    timeoutMs: 10_000,
  });
  assert.ok('refused' in sent && sent.refused.includes('127.0.0.2'), JSON.stringify(sent));
  assert.equal(vetted.hits.length + internal.hits.length, before);
});

test('a network error rejects (the deliverer retries), it is not an answer', async () => {
  const closed = await listening('127.0.0.1', 0);
  const closedPort = (closed.server.address() as AddressInfo).port;
  await new Promise((ok) => closed.server.close(ok));
  await assert.rejects(
    sendWebhook(`http://hooks.test:${closedPort}/hook`, {
      allowedHosts: ['hooks.test'],
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
      body: '{}',
      headers: {},
      timeoutMs: 10_000,
    }),
    /ECONNREFUSED/,
  );
});
