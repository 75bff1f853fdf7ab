-- Rampart initial schema (SQLite).
-- Timestamps are INTEGER unix seconds; list columns are JSON arrays in TEXT.

CREATE TABLE IF NOT EXISTS generations (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);

INSERT INTO generations (name, value) VALUES ('clients', 0) ON CONFLICT (name) DO NOTHING;
INSERT INTO generations (name, value) VALUES ('keys', 0) ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS clients (
    client_id             TEXT    NOT NULL PRIMARY KEY,
    name                  TEXT    NOT NULL,
    secret_hash           BLOB,
    auth_method           TEXT    NOT NULL,
    jwks                  TEXT,
    scopes                TEXT    NOT NULL,
    audiences             TEXT    NOT NULL,
    token_format          TEXT    NOT NULL,
    access_token_ttl_secs INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS clients_created_at ON clients (created_at, client_id);

CREATE TABLE IF NOT EXISTS signing_keys (
    kid           TEXT    NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    activated_at  INTEGER,
    retired_at    INTEGER
);

CREATE TABLE IF NOT EXISTS revocations (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS revocations_expires_at ON revocations (expires_at);

CREATE TABLE IF NOT EXISTS replay_ids (
    scope      TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, id)
);

CREATE INDEX IF NOT EXISTS replay_ids_expires_at ON replay_ids (expires_at);
