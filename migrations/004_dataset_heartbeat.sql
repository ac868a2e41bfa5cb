-- A dataset being converted is renewed by the API process converting it; one whose renewals
-- stopped (that process crashed) is failed as interrupted by any API process's sweep.
ALTER TABLE datasets ADD COLUMN heartbeat_at timestamptz;
UPDATE datasets SET heartbeat_at = created_at WHERE status = 'validating';
