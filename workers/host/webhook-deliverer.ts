import { createHmac } from 'node:crypto';
import { Worker, type Job as QueueJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { LiveEvents } from '../../src/queue/live-events.js';
import { logConnectionErrors } from '../../src/queue/redis-server.js';
import type { Store } from '../../src/store/store.js';
import { WEBHOOK_QUEUE_NAME, type WebhookDelivery } from '../../src/webhooks/webhook-queue.js';
import { sendWebhook } from '../../src/webhooks/webhook-request.js';

const DELIVERY_TIMEOUT_MS = 10_000;

export const signature = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/**
 * POSTs `{ type, jobId, status }` to a job's webhook URL when it ends, signed with its
 * secret (X-Tfjs-Adapt-Signature: sha256=<hex HMAC-SHA256 of the raw body>). URL and secret
 * are read from the store here, never carried through Redis. The URL is vetted again at each
 * attempt (the name may resolve elsewhere now than when the job was created) and the request
 * goes to the address that passed. A non-2xx answer or a network error is retried with
 * backoff by BullMQ; every attempt is written to the job's event log.
 */
export class WebhookDeliverer {
  readonly worker: Worker<WebhookDelivery>;

  constructor(private readonly opts: { connection: Redis; store: Store; live: LiveEvents; log: Logger; allowedHosts: readonly string[] }) {
    this.worker = new Worker<WebhookDelivery>(WEBHOOK_QUEUE_NAME, (job) => this.deliver(job), { connection: opts.connection, concurrency: 4 });
    logConnectionErrors(this.worker, opts.log, 'webhooks');
  }

  private async deliver(delivery: QueueJob<WebhookDelivery>): Promise<void> {
    const { store, live } = this.opts;
    const { jobId, status } = delivery.data;
    const job = await store.jobs.get(jobId);
    const hook = job?.spec.webhook;
    if (!job || !hook) return;
    const attempt = delivery.attemptsMade + 1;
    const record = async (data: Record<string, unknown>) => {
      const ev = await store.db.tx((q) => store.events.append(q, jobId, 'log', data));
      await live.publish(jobId, [ev]);
    };
    const body = JSON.stringify({ type: `job.${status}`, jobId, status });
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'tfjs-adapt-webhook/1' };
    if (hook.secret) headers['x-tfjs-adapt-signature'] = signature(hook.secret, body);
    const sent = await sendWebhook(hook.url, { allowedHosts: this.opts.allowedHosts, body, headers, timeoutMs: DELIVERY_TIMEOUT_MS }).catch(
      (err: Error) => ({ failed: err.message }),
    );
    if ('refused' in sent) {
      await record({ level: 'warn', message: `webhook not delivered: the URL ${sent.refused}`, webhook: { attempt, delivered: false } });
      return;
    }
    const ok = 'status' in sent && sent.status >= 200 && sent.status < 300;
    const outcome = 'status' in sent ? `answered ${sent.status}` : `failed: ${sent.failed}`;
    await record({ level: ok ? 'info' : 'warn', message: `webhook delivery attempt ${attempt} ${outcome}`, webhook: { attempt, delivered: ok } });
    if (!ok) throw new Error(`webhook ${outcome}`);
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
