-- Models imported from a URL: where they came from, and why an import failed (a model stays
-- `validating` while its files are fetched and checked, then becomes `ready` or `failed`).
ALTER TABLE models ADD COLUMN source jsonb;
ALTER TABLE models ADD COLUMN error jsonb;
