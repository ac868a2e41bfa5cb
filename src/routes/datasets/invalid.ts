import { HttpProblem, type FieldError } from '../../plugins/problem.js';

/** The 400 for problems with fields of a dataset request body: the first one in the detail, all of them in `errors`. */
export function invalid(errors: [FieldError, ...FieldError[]] | FieldError[]): HttpProblem {
  const [first] = errors;
  const detail = first ? `body ${first.pointer} ${first.detail}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` : 'body is not valid';
  return new HttpProblem(400, 'validation', 'The request is not valid', detail, errors);
}
