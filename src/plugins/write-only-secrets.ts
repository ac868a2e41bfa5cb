/**
 * A webhook's `secret` is write-only: it signs deliveries (workers/host/webhook-deliverer.ts
 * reads it from the stored spec) but no answer carries it, so that whoever can read a job or a
 * sweep (a dashboard user, a log of API responses, a shared link) cannot forge deliveries.
 * A `preSerialization` hook of the job and sweep routes, which answer specs: it copies only
 * the path to each `webhook` object that holds a secret, and leaves the stored value alone.
 */
import type { preSerializationAsyncHookHandler } from 'fastify';

function withoutSecrets(value: unknown, key: string | undefined): unknown {
  if (Array.isArray(value)) {
    const copy = value.map((v) => withoutSecrets(v, undefined));
    return copy.some((v, i) => v !== value[i]) ? copy : value;
  }
  if (value === null || typeof value !== 'object') return value;
  // plain objects only: a stream or a buffer is sent as it is
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (key === 'webhook' && 'secret' in value) return Object.fromEntries(entries.filter(([k]) => k !== 'secret'));
  const changed = entries.map(([k, v]) => [k, withoutSecrets(v, k)] as const);
  return changed.some(([k, v]) => v !== (value as Record<string, unknown>)[k]) ? Object.fromEntries(changed) : value;
}

export const hideWebhookSecrets: preSerializationAsyncHookHandler = async (_req, _reply, payload) => withoutSecrets(payload, undefined);
