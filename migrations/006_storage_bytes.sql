-- Bytes each dataset, model and checkpoint takes on disk, recorded when it is written, so that a
-- tenant's storage use (TENANT_STORAGE_QUOTA_BYTES) is one sum. Rows from before count as 0.
ALTER TABLE datasets ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
