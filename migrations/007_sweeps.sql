-- Sweeps (src/store/sweeps.ts): a search over a job spec's fields. Every trial is fixed when the
-- sweep is created (its parameters and the spec they make, checked and estimated then) and
-- becomes an ordinary job when it is launched; the jobs table stays the truth of how it went.

CREATE TABLE sweeps (
  id           text PRIMARY KEY,
  tenant       text NOT NULL DEFAULT 'default',
  status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  spec         jsonb NOT NULL,
  estimate     jsonb NOT NULL,
  -- as jobs.event_seq: the seq of the sweep's latest event, bumped with each insert
  event_seq    integer NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sweeps_tenant_idx ON sweeps (tenant, id);
CREATE INDEX sweeps_status_idx ON sweeps (status, id);

CREATE TABLE sweep_trials (
  sweep_id     text NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
  idx          integer NOT NULL,
  parameters   jsonb NOT NULL,
  spec         jsonb NOT NULL,
  estimate     jsonb NOT NULL,
  -- set when the trial is launched, under the sweep row's lock: each trial becomes one job
  job_id       text UNIQUE,
  -- the sweep stopped the trial by its earlyTermination rule: why
  stopped      jsonb,
  -- the trial's end has been written to the sweep's event log
  announced    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (sweep_id, idx)
);

CREATE TABLE sweep_events (
  sweep_id    text NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  type        text NOT NULL CHECK (type IN ('status', 'trial', 'log')),
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sweep_id, seq)
);

ALTER TABLE jobs ADD COLUMN sweep_id text;
CREATE INDEX jobs_sweep_idx ON jobs (sweep_id) WHERE sweep_id IS NOT NULL;
