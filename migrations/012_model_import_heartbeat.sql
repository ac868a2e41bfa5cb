-- A model imported from a URL is fetched and checked by the API process that accepted it, which
-- renews it while it works; one whose renewals stopped (that process died) is failed as
-- interrupted by any API process's sweep, as dataset conversions are (004).
ALTER TABLE models ADD COLUMN heartbeat_at timestamptz;
UPDATE models SET heartbeat_at = created_at WHERE status = 'validating';
