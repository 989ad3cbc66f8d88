-- Processed applications: indexed columns for search, the rest in a JSON document.
CREATE TABLE applications (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    api_key_id      TEXT NOT NULL,
    -- Not unique: keys are remembered 72 h; a later reuse is a new application.
    idempotency_key TEXT NOT NULL,
    channel         TEXT NOT NULL,
    partner_id      TEXT,
    external_id     TEXT,
    received_at_ns  INTEGER NOT NULL,
    processed_at_ns INTEGER NOT NULL,
    ssn_hash        TEXT,
    pii_sealed      BLOB,
    document        BLOB NOT NULL,
    rules_version   TEXT NOT NULL,
    product_version TEXT NOT NULL
);
CREATE INDEX applications_received ON applications (received_at_ns);
CREATE INDEX applications_status ON applications (status, received_at_ns);
CREATE INDEX applications_channel ON applications (channel, received_at_ns);
CREATE INDEX applications_external ON applications (external_id);
CREATE INDEX applications_idempotency ON applications (api_key_id, idempotency_key);
CREATE INDEX applications_ssn ON applications (ssn_hash, received_at_ns);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    key_hash       TEXT NOT NULL UNIQUE,
    label          TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    created_at_ns  INTEGER NOT NULL,
    expires_at_ns  INTEGER,
    revoked_at_ns  INTEGER
);
