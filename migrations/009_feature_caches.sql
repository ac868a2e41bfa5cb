-- Cached outputs of frozen layers (the feature cache of finetune jobs with strategy freeze), one
-- row per cache directory, so that their bytes count in the tenant's storage quota and go with
-- the base model or dataset they were computed from.
CREATE TABLE feature_caches (
  path           text PRIMARY KEY,
  tenant         text NOT NULL,
  base_model_id  text NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  dataset_id     text NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  bytes          bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feature_caches_tenant ON feature_caches (tenant);
