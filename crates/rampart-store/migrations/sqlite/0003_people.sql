-- People: user-facing client settings, users and their second factors, browser sessions,
-- authorization requests, codes, refresh-token families and consents.
-- Secrets arrive hashed (cookies, codes, refresh tokens, recovery codes) or sealed
-- (profiles, TOTP secrets); the store never sees plaintext.
-- Timestamps are INTEGER unix seconds; list columns are JSON arrays in TEXT;
-- booleans are INTEGER 0/1.

-- Clients: flow settings. The defaults keep existing (machine-to-machine) clients working.
ALTER TABLE clients ADD COLUMN grant_types   TEXT    NOT NULL DEFAULT '["client_credentials"]';
ALTER TABLE clients ADD COLUMN redirect_uris TEXT    NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN first_party   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_mfa   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_par   INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS users (
    user_id        TEXT    NOT NULL PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    email_index    BLOB    NOT NULL UNIQUE,
    sealed_profile BLOB    NOT NULL,
    password_hash  TEXT    NOT NULL,
    roles          TEXT    NOT NULL,
    user_groups    TEXT    NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS users_created_at ON users (created_at, user_id);

CREATE TABLE IF NOT EXISTS totp (
    user_id       TEXT    NOT NULL PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    sealed_secret BLOB    NOT NULL,
    confirmed     INTEGER NOT NULL DEFAULT 0,
    last_step     INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE IF NOT EXISTS webauthn_credentials (
    credential_id   BLOB    NOT NULL PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    credential_json TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);

CREATE INDEX IF NOT EXISTS webauthn_credentials_user
    ON webauthn_credentials (user_id, created_at, credential_id);

CREATE TABLE IF NOT EXISTS sessions (
    session_id   TEXT    NOT NULL PRIMARY KEY,
    cookie_hash  BLOB    NOT NULL UNIQUE,
    user_id      TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    auth_time    INTEGER NOT NULL,
    amr          TEXT    NOT NULL,
    acr          TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);

-- A pending user is deleted with the request: a deleted user owes nothing.
CREATE TABLE IF NOT EXISTS auth_requests (
    request_id      TEXT    NOT NULL PRIMARY KEY,
    client_id       TEXT    NOT NULL,
    params_json     TEXT    NOT NULL,
    pushed          INTEGER NOT NULL,
    pending_user_id TEXT    REFERENCES users (user_id) ON DELETE CASCADE,
    pending_binding BLOB,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS auth_requests_expires_at ON auth_requests (expires_at);
CREATE INDEX IF NOT EXISTS auth_requests_pending_user ON auth_requests (pending_user_id);

-- `redeemed_at` marks the one redemption; the `grant_*` columns record what it issued
-- (all NULL until `record_code_grant`), so that a second redemption can revoke it.
CREATE TABLE IF NOT EXISTS auth_codes (
    code_hash               BLOB    NOT NULL PRIMARY KEY,
    client_id               TEXT    NOT NULL,
    user_id                 TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    session_id              TEXT    NOT NULL,
    redirect_uri            TEXT    NOT NULL,
    scope                   TEXT    NOT NULL,
    nonce                   TEXT,
    code_challenge          TEXT    NOT NULL,
    auth_time               INTEGER NOT NULL,
    amr                     TEXT    NOT NULL,
    acr                     TEXT    NOT NULL,
    created_at              INTEGER NOT NULL,
    expires_at              INTEGER NOT NULL,
    redeemed_at             INTEGER,
    grant_access_jti        TEXT,
    grant_access_expires_at INTEGER,
    grant_refresh_family_id TEXT
);

CREATE INDEX IF NOT EXISTS auth_codes_user ON auth_codes (user_id);
CREATE INDEX IF NOT EXISTS auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE IF NOT EXISTS refresh_families (
    family_id           TEXT    NOT NULL PRIMARY KEY,
    client_id           TEXT    NOT NULL,
    user_id             TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    session_id          TEXT,
    scope               TEXT    NOT NULL,
    auth_time           INTEGER NOT NULL,
    amr                 TEXT    NOT NULL,
    acr                 TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    revoked_at          INTEGER
);

CREATE INDEX IF NOT EXISTS refresh_families_user ON refresh_families (user_id);
CREATE INDEX IF NOT EXISTS refresh_families_session ON refresh_families (session_id);
CREATE INDEX IF NOT EXISTS refresh_families_absolute_expires_at
    ON refresh_families (absolute_expires_at);

CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash      BLOB    NOT NULL PRIMARY KEY,
    family_id       TEXT    NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    used_at         INTEGER
);

CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE IF NOT EXISTS consents (
    user_id    TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
