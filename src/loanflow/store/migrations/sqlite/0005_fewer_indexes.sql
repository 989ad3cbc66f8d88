-- No query reads these indexes (see the PostgreSQL migration of the same name).
DROP INDEX IF EXISTS applications_status;
DROP INDEX IF EXISTS applications_channel;
DROP INDEX IF EXISTS applications_idempotency;
