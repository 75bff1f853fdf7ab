-- API keys: long-lived credentials issued by the authorization server and verified
-- through introspection. Only a keyed hash (HMAC-SHA256) of the key is stored; it is
-- also the lookup key. `key_id` is a public, random identifier for management.

INSERT INTO generations (name, value) VALUES ('api_keys', 0) ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS api_keys (
    key_id     TEXT    NOT NULL PRIMARY KEY,
    key_hash   BLOB    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    audiences  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);

CREATE INDEX IF NOT EXISTS api_keys_created_at ON api_keys (created_at, key_id);
