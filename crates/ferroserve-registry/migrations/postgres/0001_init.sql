-- Registry schema (PostgreSQL). JSON values are stored as TEXT; times are unix milliseconds.
CREATE TABLE models (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    tags        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE model_versions (
    model             TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
    version           BIGINT NOT NULL,
    stage             TEXT NOT NULL,
    status            TEXT NOT NULL,
    failure_reason    TEXT,
    artifact_digest   TEXT NOT NULL,
    artifact_size     BIGINT NOT NULL,
    format            TEXT NOT NULL,
    engine_hint       TEXT,
    signature         TEXT,
    feature_schema    TEXT,
    params            TEXT NOT NULL,
    metrics           TEXT NOT NULL,
    lineage           TEXT NOT NULL,
    model_card        TEXT,
    reference_profile TEXT,
    tags              TEXT NOT NULL,
    registered_by     TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (model, version)
);

CREATE INDEX model_versions_stage ON model_versions (model, stage);

CREATE TABLE model_aliases (
    model   TEXT NOT NULL,
    alias   TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
);

-- No foreign key: the history of a model outlives the model.
CREATE TABLE audit_events (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    model   TEXT NOT NULL,
    version BIGINT,
    before  TEXT,
    after   TEXT
);

CREATE INDEX audit_events_model ON audit_events (model, id);
