-- No query reads these indexes: the API finds applications by id, the duplicate-SSN
-- flag by ssn_hash. Each one cost every insert (the bench: ~10-25% of PostgreSQL's CPU
-- per stored application). Kept: the primary key, ssn_hash, received_at_ns (time
-- ranges: reports, retention) and external_id (a partner asking after its reference).
DROP INDEX IF EXISTS applications_status;
DROP INDEX IF EXISTS applications_channel;
DROP INDEX IF EXISTS applications_partner;
DROP INDEX IF EXISTS applications_idempotency;
