-- Every job, dataset and model belongs to one tenant (API_KEYS names them); without keys
-- everything belongs to 'default'. Other tenants' objects are invisible (404).
ALTER TABLE jobs ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE datasets ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE models ADD COLUMN tenant text NOT NULL DEFAULT 'default';
CREATE INDEX jobs_tenant_idx ON jobs (tenant, id);
CREATE INDEX datasets_tenant_idx ON datasets (tenant, id);
CREATE INDEX models_tenant_idx ON models (tenant, id);
-- the same Idempotency-Key from two tenants is two requests
ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_tenant_idempotency_key ON jobs (tenant, idempotency_key);
