/**
 * A webhook receiver on a loopback port: records every delivery (body and signature header) and
 * answers 204, or 500 while `failNext` counts down, so a test can watch retries. `startHarness`
 * must allow it (`WEBHOOK_ALLOWED_HOSTS: receiver.host`), loopback being refused by default;
 * `startWebhookHarness` starts both.
 */
import { createServer } from 'node:http';
import { registerMnist, startHarness, type Harness } from './harness.js';

export interface Delivery {
  body: string;
  signature: string | undefined;
}

export interface WebhookReceiver {
  /** 127.0.0.1:port, as WEBHOOK_ALLOWED_HOSTS names it */
  host: string;
  port: number;
  received: Delivery[];
  /** how many of the next deliveries to answer 500 */
  failNext: number;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = { host: '', port: 0, received: [], failNext: 0, close: () => new Promise((ok) => server.close(() => ok())) };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      receiver.received.push({ body, signature: req.headers['x-tfjs-adapt-signature'] as string | undefined });
      res.statusCode = receiver.failNext-- > 0 ? 500 : 204;
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  receiver.port = (server.address() as { port: number }).port;
  receiver.host = `127.0.0.1:${receiver.port}`;
  return receiver;
}

/** The whole service allowed to call a new receiver, with `examples` MNIST examples (and 100 to test) registered. */
export async function startWebhookHarness(opts: {
  examples: number;
}): Promise<{ h: Harness; data: { train: string; test: string }; receiver: WebhookReceiver; stop: () => Promise<void> }> {
  const receiver = await startWebhookReceiver();
  const h = await startHarness({ WEBHOOK_ALLOWED_HOSTS: receiver.host });
  const stop = async () => {
    await h.stop();
    await receiver.close();
  };
  try {
    return { h, data: await registerMnist(h, opts.examples, 100), receiver, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
