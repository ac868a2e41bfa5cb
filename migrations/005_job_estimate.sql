-- The cost estimate a job was admitted with (src/jobs/estimate.ts), shown on the job.
ALTER TABLE jobs ADD COLUMN estimate jsonb;
