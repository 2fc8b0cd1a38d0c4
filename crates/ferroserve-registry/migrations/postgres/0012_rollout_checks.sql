-- The last gate check of each rollout, as the replica judging it (the
-- leader) made it: each gate's figure, limit and consecutive failures
-- (JSON owned by the serving layer), so that every replica shows it in the
-- rollout's status. step is the step it checked and moved_at the rollout's
-- updated_at it saw (a check from before the rollout's last move is
-- stale); checked_at is unix ms.
CREATE TABLE rollout_checks (
    rollout_id BIGINT PRIMARY KEY REFERENCES rollouts(id) ON DELETE CASCADE,
    step       BIGINT NOT NULL,
    moved_at   BIGINT NOT NULL,
    gates      TEXT NOT NULL,
    checked_at BIGINT NOT NULL
);
