-- Each replica's figures for one step of a rollout (what its requests to
-- stable and canary left: counts and latency histogram buckets, JSON owned
-- by the serving layer), replaced every second while the step runs, so
-- that the replica judging the rollout adds up the whole service's
-- traffic. replica is the id a server process takes at start; updated_at
-- is unix ms.
CREATE TABLE rollout_shares (
    rollout_id BIGINT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
    step       BIGINT NOT NULL,
    replica    TEXT NOT NULL,
    share      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, step, replica)
);
