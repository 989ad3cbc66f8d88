-- Manual review: applications that failed every attempt, and who did what about them.
CREATE TABLE dead_letters (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    api_key_id          TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL,
    channel             TEXT NOT NULL,
    partner_id          TEXT,
    external_id         TEXT,
    received_at_ns      BIGINT NOT NULL,
    dead_lettered_at_ns BIGINT NOT NULL,
    error_code          TEXT NOT NULL,
    last_error          TEXT NOT NULL,
    attempts            JSONB NOT NULL,
    envelope            BYTEA NOT NULL,
    resolved_at_ns      BIGINT,
    resolved_by         TEXT,
    resolution          TEXT
);
-- Every search is newest first and pages on (dead_lettered_at_ns, id).
CREATE INDEX dead_letters_status ON dead_letters (status, dead_lettered_at_ns, id);
CREATE INDEX dead_letters_error ON dead_letters (error_code, dead_lettered_at_ns, id);
CREATE INDEX dead_letters_channel ON dead_letters (channel, dead_lettered_at_ns, id);
CREATE INDEX dead_letters_partner ON dead_letters (partner_id, dead_lettered_at_ns, id)
    WHERE partner_id IS NOT NULL;
CREATE INDEX dead_letters_external ON dead_letters (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX dead_letters_time ON dead_letters (dead_lettered_at_ns, id);

CREATE TABLE audit_log (
    seq     BIGSERIAL PRIMARY KEY,
    at_ns   BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  JSONB NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target);
-- Append-only: an auditor must be able to trust that nothing was edited away.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
