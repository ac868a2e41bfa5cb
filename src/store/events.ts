import type { Db, Queryable } from './db.js';

export type EventType = 'status' | 'progress' | 'metrics' | 'checkpoint' | 'log';

export interface JobEvent {
  seq: number;
  type: EventType;
  createdAt: string;
  data: Record<string, unknown>;
}

interface EventRow {
  seq: number;
  type: EventType;
  created_at: Date;
  data: Record<string, unknown>;
}

const toEvent = (r: EventRow): JobEvent => ({ seq: r.seq, type: r.type, createdAt: r.created_at.toISOString(), data: r.data });

/** The per-job ordered event log. Appends happen inside the caller's transaction. */
export class EventStore {
  constructor(private readonly db: Db) {}

  /** Appends one event; the seq comes from the job row, whose lock orders concurrent writers. */
  async append(q: Queryable, jobId: string, type: EventType, data: Record<string, unknown>): Promise<JobEvent> {
    const [row] = await q.query<{ event_seq: number }>(
      'UPDATE jobs SET event_seq = event_seq + 1, updated_at = now() WHERE id = $1 RETURNING event_seq',
      [jobId],
    );
    if (!row) throw new Error(`cannot append a ${type} event: job ${jobId} does not exist`);
    const [ev] = await q.query<EventRow>(
      'INSERT INTO job_events (job_id, seq, type, data) VALUES ($1, $2, $3, $4::jsonb) RETURNING seq, type, created_at, data',
      [jobId, row.event_seq, type, JSON.stringify(data)],
    );
    return toEvent(ev!);
  }

  async list(jobId: string, afterSeq: number, limit: number): Promise<JobEvent[]> {
    const rows = await this.db.query<EventRow>(
      'SELECT seq, type, created_at, data FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [jobId, afterSeq, limit],
    );
    return rows.map(toEvent);
  }
}
