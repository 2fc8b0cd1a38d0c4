-- Experiment tracking, as MLflow's tracking API has it: experiments, their
-- runs, and what each run logged (params, tags, every value of every
-- metric, input datasets). lifecycle_stage is 'active' or 'deleted' (a
-- deleted experiment or run can be restored). Times are unix ms.
CREATE TABLE tracking_experiments (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage   TEXT NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);
-- MLflow clients log to experiment 0, 'Default', unless told otherwise.
INSERT INTO tracking_experiments
    (id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
    VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', 0, 0);

CREATE TABLE tracking_experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES tracking_experiments (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE tracking_runs (
    run_id          TEXT PRIMARY KEY,
    experiment_id   INTEGER NOT NULL REFERENCES tracking_experiments (id),
    run_name        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    artifact_uri    TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    deleted_time    INTEGER
);
CREATE INDEX tracking_runs_experiment ON tracking_runs (experiment_id, start_time);

CREATE TABLE tracking_params (
    run_id TEXT NOT NULL REFERENCES tracking_runs (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE tracking_run_tags (
    run_id TEXT NOT NULL REFERENCES tracking_runs (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- Every value logged for a metric, in the order of (step, timestamp); a
-- value logged twice at the same step and time is kept once. A NaN is
-- stored as 0 with is_nan = 1 (SQLite keeps no NaN).
CREATE TABLE tracking_metrics (
    run_id    TEXT NOT NULL REFERENCES tracking_runs (run_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL NOT NULL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (run_id, key, step, timestamp, value, is_nan)
);

-- The latest value of each metric of a run (the greatest step, then the
-- latest time), which searches filter and order by.
CREATE TABLE tracking_latest_metrics (
    run_id    TEXT NOT NULL REFERENCES tracking_runs (run_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL NOT NULL,
    is_nan    INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- Datasets logged as inputs of runs, once per experiment, name and digest;
-- schema and profile are kept as the client sent them.
CREATE TABLE tracking_datasets (
    experiment_id INTEGER NOT NULL REFERENCES tracking_experiments (id),
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    source_type   TEXT NOT NULL,
    source        TEXT NOT NULL,
    schema        TEXT,
    profile       TEXT,
    PRIMARY KEY (experiment_id, name, digest)
);

-- Which run took which dataset in, with the input's tags (JSON object).
CREATE TABLE tracking_run_inputs (
    run_id        TEXT NOT NULL REFERENCES tracking_runs (run_id) ON DELETE CASCADE,
    experiment_id INTEGER NOT NULL,
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    tags          TEXT NOT NULL,
    PRIMARY KEY (run_id, name, digest)
);

-- Models logged by runs (MLflow 3's logged models): where their files are
-- and whether they are whole (LOGGED_MODEL_PENDING until the client
-- finalizes them READY, or UPLOAD_FAILED), with their tags and params.
CREATE TABLE tracking_logged_models (
    model_id         TEXT PRIMARY KEY,
    experiment_id    INTEGER NOT NULL REFERENCES tracking_experiments (id),
    name             TEXT NOT NULL,
    source_run_id    TEXT,
    status           TEXT NOT NULL,
    status_message   TEXT,
    model_type       TEXT,
    artifact_uri     TEXT NOT NULL,
    creation_time    INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL
);
CREATE INDEX tracking_logged_models_experiment ON tracking_logged_models (experiment_id, creation_time);

CREATE TABLE tracking_logged_model_tags (
    model_id TEXT NOT NULL REFERENCES tracking_logged_models (model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE tracking_logged_model_params (
    model_id TEXT NOT NULL REFERENCES tracking_logged_models (model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
