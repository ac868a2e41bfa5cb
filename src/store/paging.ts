export interface PageResult<T> {
  data: T[];
  hasMore: boolean;
  nextCursor: string | null;
}

/** Turns `limit + 1` rows fetched newest first into a page whose cursor is the last id shown. */
export function pageOf<T extends { id: string }>(rows: T[], limit: number): PageResult<T> {
  const hasMore = rows.length > limit;
  const data = hasMore ? rows.slice(0, limit) : rows;
  return { data, hasMore, nextCursor: hasMore ? data[data.length - 1].id : null };
}
