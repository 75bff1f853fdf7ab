-- Rampart schema (PostgreSQL): the same tables, columns and constraints as the SQLite
-- migrations (migrations/sqlite), in PostgreSQL's types.
-- Timestamps are BIGINT unix seconds; list columns are JSON arrays in TEXT (the same
-- encoding as SQLite, so both backends share the row decoding); hashes and sealed blobs
-- are BYTEA.

CREATE TABLE generations (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO generations (name, value)
    VALUES ('clients', 0), ('keys', 0), ('api_keys', 0), ('revocations', 0);

CREATE TABLE clients (
    client_id             TEXT    NOT NULL PRIMARY KEY,
    name                  TEXT    NOT NULL,
    secret_hash           BYTEA,
    auth_method           TEXT    NOT NULL,
    jwks                  TEXT,
    scopes                TEXT    NOT NULL,
    audiences             TEXT    NOT NULL,
    token_format          TEXT    NOT NULL,
    access_token_ttl_secs BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    grant_types           TEXT    NOT NULL DEFAULT '["client_credentials"]',
    redirect_uris         TEXT    NOT NULL DEFAULT '[]',
    first_party           BOOLEAN NOT NULL DEFAULT FALSE,
    require_mfa           BOOLEAN NOT NULL DEFAULT FALSE,
    require_par           BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX clients_created_at ON clients (created_at, client_id);

CREATE TABLE signing_keys (
    kid           TEXT   NOT NULL PRIMARY KEY,
    kind          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    sealed_secret BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    activated_at  BIGINT,
    retired_at    BIGINT
);

CREATE TABLE revocations (
    jti        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE replay_ids (
    scope      TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, id)
);

CREATE INDEX replay_ids_expires_at ON replay_ids (expires_at);

CREATE TABLE api_keys (
    key_id     TEXT   NOT NULL PRIMARY KEY,
    key_hash   BYTEA  NOT NULL UNIQUE,
    name       TEXT   NOT NULL,
    owner      TEXT   NOT NULL,
    scopes     TEXT   NOT NULL,
    audiences  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX api_keys_created_at ON api_keys (created_at, key_id);

CREATE TABLE users (
    user_id        TEXT    NOT NULL PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    email_index    BYTEA   NOT NULL UNIQUE,
    sealed_profile BYTEA   NOT NULL,
    password_hash  TEXT    NOT NULL,
    roles          TEXT    NOT NULL,
    user_groups    TEXT    NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE INDEX users_created_at ON users (created_at, user_id);

CREATE TABLE totp (
    user_id       TEXT    NOT NULL PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    sealed_secret BYTEA   NOT NULL,
    confirmed     BOOLEAN NOT NULL DEFAULT FALSE,
    last_step     BIGINT,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE recovery_codes (
    user_id    TEXT   NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash  BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE webauthn_credentials (
    credential_id   BYTEA  NOT NULL PRIMARY KEY,
    user_id         TEXT   NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name            TEXT   NOT NULL,
    credential_json TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);

CREATE INDEX webauthn_credentials_user
    ON webauthn_credentials (user_id, created_at, credential_id);

CREATE TABLE sessions (
    session_id   TEXT   NOT NULL PRIMARY KEY,
    cookie_hash  BYTEA  NOT NULL UNIQUE,
    user_id      TEXT   NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    auth_time    BIGINT NOT NULL,
    amr          TEXT   NOT NULL,
    acr          TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- A pending user is deleted with the request: a deleted user owes nothing.
CREATE TABLE auth_requests (
    request_id      TEXT    NOT NULL PRIMARY KEY,
    client_id       TEXT    NOT NULL,
    params_json     TEXT    NOT NULL,
    pushed          BOOLEAN NOT NULL,
    pending_user_id TEXT    REFERENCES users (user_id) ON DELETE CASCADE,
    pending_binding BYTEA,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);

CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);
CREATE INDEX auth_requests_pending_user ON auth_requests (pending_user_id);

-- `redeemed_at` marks the one redemption; the `grant_*` columns record what it issued
-- (all NULL until `record_code_grant`), so that a second redemption can revoke it.
CREATE TABLE auth_codes (
    code_hash               BYTEA  NOT NULL PRIMARY KEY,
    client_id               TEXT   NOT NULL,
    user_id                 TEXT   NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    session_id              TEXT   NOT NULL,
    redirect_uri            TEXT   NOT NULL,
    scope                   TEXT   NOT NULL,
    nonce                   TEXT,
    code_challenge          TEXT   NOT NULL,
    auth_time               BIGINT NOT NULL,
    amr                     TEXT   NOT NULL,
    acr                     TEXT   NOT NULL,
    created_at              BIGINT NOT NULL,
    expires_at              BIGINT NOT NULL,
    redeemed_at             BIGINT,
    grant_access_jti        TEXT,
    grant_access_expires_at BIGINT,
    grant_refresh_family_id TEXT
);

CREATE INDEX auth_codes_user ON auth_codes (user_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_families (
    family_id           TEXT   NOT NULL PRIMARY KEY,
    client_id           TEXT   NOT NULL,
    user_id             TEXT   NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    session_id          TEXT,
    scope               TEXT   NOT NULL,
    auth_time           BIGINT NOT NULL,
    amr                 TEXT   NOT NULL,
    acr                 TEXT   NOT NULL,
    created_at          BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    revoked_at          BIGINT
);

CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE INDEX refresh_families_session ON refresh_families (session_id);
CREATE INDEX refresh_families_absolute_expires_at ON refresh_families (absolute_expires_at);

CREATE TABLE refresh_tokens (
    token_hash      BYTEA  NOT NULL PRIMARY KEY,
    family_id       TEXT   NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    used_at         BIGINT
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE consents (
    user_id    TEXT   NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT   NOT NULL,
    scopes     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
