-- Progressive rollouts: a canary version takes a growing share of a
-- model's traffic, step by step, beside the stable version. state is
-- progressing, paused or awaiting_approval while the rollout runs (active),
-- then completed, rolled_back or aborted; step indexes the canary
-- percentages kept in settings (JSON, its shape owned by the serving
-- layer). Times are unix ms; step_started_at is when the current step
-- began, so a restarted server resumes the step timer.
CREATE TABLE rollouts (
    id              BIGSERIAL PRIMARY KEY,
    model           TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
    stable_version  BIGINT NOT NULL,
    canary_version  BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('progressing', 'paused', 'awaiting_approval',
                                                   'completed', 'rolled_back', 'aborted')),
    step            BIGINT NOT NULL CHECK (step >= 0),
    step_started_at BIGINT NOT NULL,
    settings        TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- At most one active rollout per model.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (model)
    WHERE state IN ('progressing', 'paused', 'awaiting_approval');
CREATE INDEX rollouts_model ON rollouts (model, id);

-- What happened to a rollout and why, in insertion (id) order: action is
-- started, stepped, paused, resumed, awaiting_approval, rolled_back,
-- completed or aborted; figures is JSON (the gate figures behind the
-- decision). The registry keeps a rollout's first 100 and latest 900.
CREATE TABLE rollout_decisions (
    id         BIGSERIAL PRIMARY KEY,
    rollout_id BIGINT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    action     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    figures    TEXT NOT NULL,
    actor      TEXT NOT NULL
);

CREATE INDEX rollout_decisions_rollout ON rollout_decisions (rollout_id, id);
