-- Jobs, their event logs and checkpoints, and the datasets and models they use.
-- Ids are time-ordered strings (see src/store/ids.ts), so ORDER BY id is creation order.

CREATE TABLE datasets (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  status        text NOT NULL CHECK (status IN ('validating', 'ready', 'failed')),
  source        jsonb NOT NULL,
  num_examples  integer,
  feature_shape jsonb,
  feature_dtype text,
  num_classes   integer,
  classes       jsonb,
  class_counts  jsonb,
  preprocessing jsonb,
  dir           text,
  error         jsonb,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE models (
  id             text PRIMARY KEY,
  name           text NOT NULL,
  status         text NOT NULL CHECK (status IN ('validating', 'ready', 'failed')),
  job_id         text,
  base_model_id  text,
  dataset_ids    jsonb NOT NULL DEFAULT '{}'::jsonb,
  metrics        jsonb,
  input_shape    jsonb,
  classes        jsonb,
  preprocessing  jsonb,
  dir            text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
  id                text PRIMARY KEY,
  type              text NOT NULL,
  status            text NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled')),
  spec              jsonb NOT NULL,
  progress          jsonb,
  metrics           jsonb,
  result            jsonb,
  error             jsonb,
  attempt           integer NOT NULL DEFAULT 0,
  backend           text,
  -- what a client asked a running job to do; the worker records the outcome once it has stopped
  stop_requested    text CHECK (stop_requested IN ('cancel', 'pause')),
  -- the seq of the job's latest event; bumped in the same transaction as each insert,
  -- which serialises writers per job and keeps seq gap-free
  event_seq         integer NOT NULL DEFAULT 0,
  idempotency_key   text UNIQUE,
  request_hash      text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_status_idx ON jobs (status, id);

CREATE TABLE job_events (
  job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  type        text NOT NULL CHECK (type IN ('status', 'progress', 'metrics', 'checkpoint', 'log')),
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, seq)
);

CREATE TABLE checkpoints (
  job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  epoch       integer NOT NULL,
  step        integer NOT NULL,
  attempt     integer NOT NULL,
  metrics     jsonb NOT NULL,
  path        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, epoch, step)
);
