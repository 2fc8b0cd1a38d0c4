-- API keys: the registry stores a key's SHA-256 hash, never its token.
-- role is reader, predictor, deployer or admin; models is a JSON array of
-- model-name patterns the key is limited to ([] for every model). Times
-- are unix ms; a key is usable while revoked_at is NULL and expires_at is
-- NULL or in the future.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    models       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
