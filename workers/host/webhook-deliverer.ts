import { createHmac } from 'node:crypto';
// loaded with require: an ES import makes Node scan its CommonJS files for export names first (why: eslint.config.js)
import bullmq = require('bullmq');
import type { Job as QueueJob } from 'bullmq';
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
 * POSTs `{ type, jobId, status }` to a job's webhook URL when it ends (a sweep's: `{ type,
 * sweepId, status, best }`), signed with its
 * secret (X-Tfjs-Adapt-Signature: sha256=<hex HMAC-SHA256 of the raw body>). URL and secret
 * are read from the store here, never carried through Redis. The URL is vetted again at each
 * attempt (the name may resolve elsewhere now than when the job was created) and the request
 * goes to the address that passed. A non-2xx answer or a network error is retried with
 * backoff by BullMQ; every attempt is written to the job's event log.
 */
export class WebhookDeliverer {
  readonly worker: bullmq.Worker<WebhookDelivery>;

  constructor(private readonly opts: { connection: Redis; store: Store; live: LiveEvents; log: Logger; allowedHosts: readonly string[] }) {
    this.worker = new bullmq.Worker<WebhookDelivery>(WEBHOOK_QUEUE_NAME, (job) => this.deliver(job), { connection: opts.connection, concurrency: 4 });
    logConnectionErrors(this.worker, opts.log, 'webhooks');
  }

  /** The hook, the body and the event log of what the delivery is about: a job, or a sweep. */
  private async subject(
    d: WebhookDelivery,
  ): Promise<{ hook: { url: string; secret?: string }; body: string; record: (data: Record<string, unknown>) => Promise<void> } | null> {
    const { store, live } = this.opts;
    if (d.kind === 'sweep') {
      const sweep = await store.sweeps.get(d.sweepId);
      const hook = sweep?.spec.webhook;
      if (!sweep || !hook) return null;
      const record = async (data: Record<string, unknown>) => {
        const ev = await store.db.tx((q) => store.sweeps.events.append(q, d.sweepId, 'log', data));
        await live.publish(d.sweepId, [ev]);
      };
      return { hook, record, body: JSON.stringify({ type: `sweep.${d.status}`, sweepId: d.sweepId, status: d.status, best: sweep.best }) };
    }
    const job = await store.jobs.get(d.jobId);
    const hook = job?.spec.webhook;
    if (!job || !hook) return null;
    const record = async (data: Record<string, unknown>) => {
      const ev = await store.db.tx((q) => store.events.append(q, d.jobId, 'log', data));
      await live.publish(d.jobId, [ev]);
    };
    return { hook, record, body: JSON.stringify({ type: `job.${d.status}`, jobId: d.jobId, status: d.status }) };
  }

  private async deliver(delivery: QueueJob<WebhookDelivery>): Promise<void> {
    const subject = await this.subject(delivery.data);
    if (!subject) return;
    const { hook, body, record } = subject;
    const attempt = delivery.attemptsMade + 1;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'tfjs-adapt-webhook/1' };
    if (hook.secret) headers['x-tfjs-adapt-signature'] = signature(hook.secret, body);
    const sent = await sendWebhook(hook.url, { allowedHosts: this.opts.allowedHosts, body, headers, timeoutMs: DELIVERY_TIMEOUT_MS }).catch((err: Error) => ({
      failed: err.message,
    }));
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
