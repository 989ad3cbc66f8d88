-- Dashboard logins (logins.py): one-time login codes and server-side sessions, each
-- kept by the SHA-256 of its secret only, and the secret session cookies are signed with.
CREATE TABLE login_codes (
    code_hash      TEXT PRIMARY KEY,
    id             TEXT NOT NULL,
    label          TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    created_at_ns  INTEGER NOT NULL,
    expires_at_ns  INTEGER NOT NULL,
    used_at_ns     INTEGER
);
CREATE INDEX login_codes_expires ON login_codes (expires_at_ns);

CREATE TABLE sessions (
    token_hash     TEXT PRIMARY KEY,
    id             TEXT NOT NULL,
    -- the audit trail's name for it: the API key's id, or login-<code id>
    actor          TEXT NOT NULL,
    label          TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    created_at_ns  INTEGER NOT NULL,
    expires_at_ns  INTEGER NOT NULL,
    -- a session opened with an API key ends when that key is revoked
    key_hash       TEXT,
    revoked_at_ns  INTEGER
);
CREATE INDEX sessions_expires ON sessions (expires_at_ns);

CREATE TABLE session_secret (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    secret         BLOB NOT NULL,
    created_at_ns  INTEGER NOT NULL
);
