/**
 * A complaint about one field of an input, named by a JSON pointer: what domain code (spec rules,
 * resolution, uploads) reports. The HTTP layer (src/plugins/problem.ts) turns a list of them into
 * an application/problem+json answer; nothing here knows HTTP.
 */
export interface FieldError {
  /** JSON pointer into the part named by `in` */
  pointer: string;
  in?: 'body' | 'query' | 'path' | 'header';
  detail: string;
}
