-- Batch and async inference jobs with their last checkpoint, so that a job
-- interrupted by a crash resumes on restart. seq orders jobs created in the
-- same millisecond. No foreign key to models: a job (and its record)
-- outlives a deleted model, and may name a model served from files.
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    model            TEXT NOT NULL,
    version          TEXT,
    spec             TEXT NOT NULL,
    state            TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    rows_total       INTEGER,
    rows_done        INTEGER NOT NULL DEFAULT 0,
    rows_failed      INTEGER NOT NULL DEFAULT 0,
    checkpoint       TEXT NOT NULL,
    error            TEXT,
    owner            TEXT,
    actor            TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX jobs_state ON jobs (state, created_at);
CREATE INDEX jobs_model ON jobs (model, created_at);
