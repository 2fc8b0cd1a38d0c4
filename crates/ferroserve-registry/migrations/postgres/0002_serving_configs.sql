-- Per-model serving configuration, one row per revision; and the highest
-- version number ever given to a model, so that a deleted version's number
-- is never given again.
CREATE TABLE serving_configs (
    model      TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
    revision   BIGINT NOT NULL,
    config     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (model, revision)
);

ALTER TABLE models ADD COLUMN last_version BIGINT NOT NULL DEFAULT 0;

UPDATE models SET last_version =
    COALESCE((SELECT MAX(version) FROM model_versions WHERE model_versions.model = models.name), 0);

CREATE INDEX model_versions_status ON model_versions (status, created_at);
