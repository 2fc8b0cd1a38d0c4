-- The service's open monitoring window of each watched version, pooled by
-- the replicas: each adds a part (its rows since the last one: values and
-- counts, JSON owned by the monitor) every second, and the leader takes
-- every part when the window is due, closes it, and opens the next
-- (closed counts the windows closed so far); report is the leader's report
-- of the version after its last close (JSON owned by the monitor), which
-- every replica answers drift reads with. Times are unix ms.
CREATE TABLE monitor_windows (
    model     TEXT NOT NULL,
    version   TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed    BIGINT NOT NULL,
    report    TEXT,
    PRIMARY KEY (model, version)
);

CREATE TABLE monitor_window_parts (
    id         BIGSERIAL PRIMARY KEY,
    model      TEXT NOT NULL,
    version    TEXT NOT NULL,
    replica    TEXT NOT NULL,
    rows_count BIGINT NOT NULL,
    part       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX monitor_window_parts_version ON monitor_window_parts (model, version, id);
