import type { Db, Queryable } from './db.js';

export type EventType = 'status' | 'progress' | 'metrics' | 'checkpoint' | 'log';
/** A sweep's log has its own kinds: its status, its trials' launches and ends, and notes. */
export type SweepEventType = 'status' | 'trial' | 'log';

export interface JobEvent<T extends string = EventType> {
  seq: number;
  type: T;
  createdAt: string;
  data: Record<string, unknown>;
}

interface EventRow<T extends string> {
  seq: number;
  type: T;
  created_at: Date;
  data: Record<string, unknown>;
}

const toEvent = <T extends string>(r: EventRow<T>): JobEvent<T> => ({ seq: r.seq, type: r.type, createdAt: r.created_at.toISOString(), data: r.data });

/** Whose log: the table of its owners (which hold event_seq), of its events, and the key between them. Constants, never input. */
interface LogTables {
  owners: 'jobs' | 'sweeps';
  events: 'job_events' | 'sweep_events';
  key: 'job_id' | 'sweep_id';
}
export const JOB_LOG: LogTables = { owners: 'jobs', events: 'job_events', key: 'job_id' };
export const SWEEP_LOG: LogTables = { owners: 'sweeps', events: 'sweep_events', key: 'sweep_id' };

/** A per-job (or per-sweep) ordered event log. Appends happen inside the caller's transaction. */
export class EventStore<T extends string = EventType> {
  constructor(
    private readonly db: Db,
    private readonly tables: LogTables = JOB_LOG,
  ) {}

  /** Appends one event; the seq comes from the owner's row, whose lock orders concurrent writers. */
  async append(q: Queryable, ownerId: string, type: T, data: Record<string, unknown>): Promise<JobEvent<T>> {
    const { owners } = this.tables;
    const [row] = await q.query<{ event_seq: number }>(`UPDATE ${owners} SET event_seq = event_seq + 1, updated_at = now() WHERE id = $1 RETURNING event_seq`, [
      ownerId,
    ]);
    if (!row) throw new Error(`cannot append a ${type} event: ${owners} has no ${ownerId}`);
    return this.insert(q, ownerId, row.event_seq, type, data);
  }

  /** Writes the event whose seq the caller took from the owner's row in its own locked UPDATE. */
  async insert(q: Queryable, ownerId: string, seq: number, type: T, data: Record<string, unknown>): Promise<JobEvent<T>> {
    const { events, key } = this.tables;
    const [ev] = await q.query<EventRow<T>>(
      `INSERT INTO ${events} (${key}, seq, type, data) VALUES ($1, $2, $3, $4::jsonb) RETURNING seq, type, created_at, data`,
      [ownerId, seq, type, JSON.stringify(data)],
    );
    return toEvent(ev);
  }

  async list(ownerId: string, afterSeq: number, limit: number): Promise<JobEvent<T>[]> {
    const { events, key } = this.tables;
    const rows = await this.db.query<EventRow<T>>(`SELECT seq, type, created_at, data FROM ${events} WHERE ${key} = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [
      ownerId,
      afterSeq,
      limit,
    ]);
    return rows.map(toEvent);
  }
}
