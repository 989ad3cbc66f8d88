-- The duplicate-SSN lookup (backends/postgres/store.py `ssn_matches`), one call per batch, always
-- through applications_ssn. Until the table's first ANALYZE the planner has no statistics
-- and takes `ssn_hash = ANY(<one hash per application>)` to match most rows (0.5% per
-- element, 200 elements), so it read the whole table for every batch, a cost that grows
-- with the table until autovacuum's first ANALYZE: a fresh deployment's first minutes,
-- every short benchmark. A SET clause keeps the function out of the caller's plan and
-- applies to its query only.
CREATE FUNCTION loanflow_ssn_matches(hashes TEXT[], since_ns BIGINT)
    RETURNS TABLE (ssn_hash TEXT, id TEXT)
    LANGUAGE sql STABLE
    SET enable_seqscan = off
AS $$
    SELECT a.ssn_hash, a.id FROM applications a
    WHERE a.ssn_hash = ANY(hashes) AND a.received_at_ns >= since_ns
$$;
