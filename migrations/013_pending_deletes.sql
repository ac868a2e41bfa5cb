-- Artifact directories whose records are deleted but whose files may not be yet: a dataset,
-- model or feature cache deleted while the object store (ARTIFACTS_URL) did not answer. The
-- row is written in the transaction that deletes the record, and removed once the files are
-- gone; the worker hosts sweep what is left until the store answers (src/artifacts/pending-deletes.ts).
CREATE TABLE pending_deletes (
  -- relative to the artifacts root, and the object store's key prefix: datasets/<id>, features/<base>, ...
  path        text PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now(),
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text
);
