-- Revocations get a generation counter too, bumped with every new revocation, so that
-- every server sharing the database (PostgreSQL replicas; the CLI beside a SQLite server)
-- notices a token revoked elsewhere and reloads its in-memory list.
INSERT INTO generations (name, value) VALUES ('revocations', 0) ON CONFLICT (name) DO NOTHING;
