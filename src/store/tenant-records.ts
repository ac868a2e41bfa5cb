import type { Db } from './db.js';
import { pageOf, type PageResult } from './paging.js';

/**
 * Reading a table of records that belong to a tenant (datasets, models): one record, or a page
 * of them newest first. The stores of those tables extend it with what is theirs.
 */
export class TenantRecords<Row, Rec extends { id: string }> {
  constructor(
    protected readonly db: Db,
    private readonly table: 'datasets' | 'models',
    private readonly toRecord: (row: Row) => Rec,
  ) {}

  /** With `tenant`, another tenant's record is as good as missing. */
  async get(id: string, tenant?: string): Promise<Rec | null> {
    const [row] = await this.db.query<Row>(`SELECT * FROM ${this.table} WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)`, [id, tenant ?? null]);
    return row ? this.toRecord(row) : null;
  }

  /** The tenant's records newest first, `limit` a page, after the cursor `after` (an id). */
  async list(f: { limit: number; after?: string; tenant: string }): Promise<PageResult<Rec>> {
    const rows = await this.db.query<Row>(`SELECT * FROM ${this.table} WHERE ($1::text IS NULL OR id < $1) AND tenant = $3 ORDER BY id DESC LIMIT $2`, [
      f.after ?? null,
      f.limit + 1,
      f.tenant,
    ]);
    return pageOf(rows.map(this.toRecord), f.limit);
  }
}
