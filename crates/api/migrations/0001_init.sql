-- Portable subset of SQL: runs unchanged on SQLite and PostgreSQL (TEXT, BIGINT, no autoincrement, no BLOB),
-- so both backends share one code path. Binary payloads are kept as standard base64 text. Times are Unix ms.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE channels (
    name TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    owner_account TEXT NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL
);

CREATE TABLE grants (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    channel TEXT NOT NULL REFERENCES channels (name),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, channel)
);

CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    channel TEXT NOT NULL REFERENCES channels (name),
    created_by TEXT NOT NULL REFERENCES accounts (id),
    uses_left BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE join_requests (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL REFERENCES channels (name),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    identity TEXT NOT NULL,
    key_package TEXT NOT NULL,
    status TEXT NOT NULL,
    welcome TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX join_requests_by_channel_status ON join_requests (channel, status, created_at);
