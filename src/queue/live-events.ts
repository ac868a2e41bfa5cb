import type { Redis } from 'ioredis';
import type { JobEvent } from '../store/events.js';

const EVENTS_CHANNEL = 'tfjs-adapt:events';
const STOP_CHANNEL = 'tfjs-adapt:stop';

/** A job's event, or a sweep's (sweep ids never collide with job ids). */
type LiveEvent = JobEvent<string>;
type Listener = (ev: LiveEvent) => void;

/** Why a running job is asked to stop; the training child checkpoints unless it is 'cancel'. */
export type StopReason = 'cancel' | 'pause' | 'shutdown';

/**
 * Redis pub/sub between processes: "job X has a new event" for SSE streams in any API
 * replica, and "cancel job X" for whichever worker host runs it. Messages are only
 * nudges; the store holds the events, so a lost message delays a stream, never corrupts it.
 */
export class LiveEvents {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly stopHandlers = new Set<(jobId: string, reason: StopReason) => void>();

  constructor(
    private readonly pub: Redis,
    sub: Redis,
  ) {
    sub.on('message', (channel: string, message: string) => {
      try {
        const msg = JSON.parse(message) as { jobId: string; event?: LiveEvent; reason?: StopReason };
        if (channel === EVENTS_CHANNEL && msg.event) this.listeners.get(msg.jobId)?.forEach((l) => l(msg.event!));
        if (channel === STOP_CHANNEL && (msg.reason === 'cancel' || msg.reason === 'pause')) this.stopHandlers.forEach((h) => h(msg.jobId, msg.reason!));
      } catch {
        // a malformed message from another process must not take this one down
      }
    });
  }

  static async connect(pub: Redis, sub: Redis): Promise<LiveEvents> {
    const live = new LiveEvents(pub, sub);
    await sub.subscribe(EVENTS_CHANNEL, STOP_CHANNEL);
    return live;
  }

  async publish(jobId: string, events: readonly LiveEvent[]): Promise<void> {
    for (const event of events) await this.pub.publish(EVENTS_CHANNEL, JSON.stringify({ jobId, event }));
  }

  /** Returns the unsubscribe function. */
  subscribe(jobId: string, listener: Listener): () => void {
    let set = this.listeners.get(jobId);
    if (!set) this.listeners.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(jobId);
    };
  }

  /** Tells whichever worker host runs the job to stop it. */
  requestStop(jobId: string, reason: 'cancel' | 'pause'): Promise<number> {
    return this.pub.publish(STOP_CHANNEL, JSON.stringify({ jobId, reason }));
  }

  onStop(handler: (jobId: string, reason: StopReason) => void): void {
    this.stopHandlers.add(handler);
  }
}
