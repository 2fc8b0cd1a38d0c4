-- Job leases: a runner holds a running job until lease_expires_at (unix
-- ms) and renews it while it runs, so that another process resumes the
-- job only once its runner is gone. owner_host and owner_pid say where the
-- runner is, for people and for telling a dead runner on the same host.
-- A job left by an older release has no lease: it counts as expired.
ALTER TABLE jobs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE jobs ADD COLUMN owner_host TEXT;
ALTER TABLE jobs ADD COLUMN owner_pid BIGINT;
