-- Manual review: applications that failed every attempt, and who did what about them.
CREATE TABLE dead_letters (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    api_key_id          TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL,
    channel             TEXT NOT NULL,
    partner_id          TEXT,
    external_id         TEXT,
    received_at_ns      INTEGER NOT NULL,
    dead_lettered_at_ns INTEGER NOT NULL,
    error_code          TEXT NOT NULL,
    last_error          TEXT NOT NULL,
    attempts            BLOB NOT NULL,
    envelope            BLOB NOT NULL,
    resolved_at_ns      INTEGER,
    resolved_by         TEXT,
    resolution          TEXT
);
-- Every search is newest first and pages on (dead_lettered_at_ns, id).
CREATE INDEX dead_letters_status ON dead_letters (status, dead_lettered_at_ns, id);
CREATE INDEX dead_letters_error ON dead_letters (error_code, dead_lettered_at_ns, id);
CREATE INDEX dead_letters_channel ON dead_letters (channel, dead_lettered_at_ns, id);
CREATE INDEX dead_letters_partner ON dead_letters (partner_id, dead_lettered_at_ns, id);
CREATE INDEX dead_letters_external ON dead_letters (external_id);
CREATE INDEX dead_letters_time ON dead_letters (dead_lettered_at_ns, id);

CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns   INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  BLOB NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target);
-- Append-only: an auditor must be able to trust that nothing was edited away.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
