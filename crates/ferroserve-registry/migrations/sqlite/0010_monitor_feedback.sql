-- Predictions waiting for their feedback, handed over by the replica that
-- served them (every second) so that feedback sent through any replica
-- finds them. One row per key a prediction can be labeled by (its request
-- ids and idempotency key, kind-prefixed: 'r:...' or 'k:...'); the rows
-- of one prediction share its id. outcomes is the prediction (JSON owned
-- by the monitor); labeled_at is set once, by the feedback call that
-- labels it. A reused key replaces the older prediction. Times are unix ms.
CREATE TABLE monitor_predictions (
    model      TEXT NOT NULL,
    key        TEXT NOT NULL,
    prediction TEXT NOT NULL,
    version    TEXT NOT NULL,
    client     TEXT,
    outcomes   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    labeled_at INTEGER,
    PRIMARY KEY (model, key)
);
CREATE INDEX monitor_predictions_prediction ON monitor_predictions (model, prediction);
CREATE INDEX monitor_predictions_created ON monitor_predictions (created_at);

-- Labeled pairs (prediction, truth) accepted by any replica, waiting for
-- the leader to add them to the version's online quality window, oldest
-- first. pairs is JSON owned by the monitor.
CREATE TABLE monitor_labels (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    model      TEXT NOT NULL,
    version    TEXT NOT NULL,
    pairs      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX monitor_labels_version ON monitor_labels (model, version, id);
