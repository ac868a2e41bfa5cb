import type { DatasetError, DatasetErrorLocation } from '../../schemas/dataset-error.js';

/**
 * Bad input found while converting a dataset: it fails the dataset with this code, message and
 * location, and is never a server error. Anything else thrown while converting is our fault.
 */
export class IngestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly location?: DatasetErrorLocation,
  ) {
    super(message);
  }

  toJSON(): DatasetError {
    return { code: this.code, message: this.message, ...(this.location ? { location: this.location } : {}) };
  }
}
