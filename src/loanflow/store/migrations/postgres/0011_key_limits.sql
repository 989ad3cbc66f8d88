-- A key bound to a partner, and a key's own rate limit (`loanflow keys create
-- --partner-id P --rate-limit R --burst B`): NULL is unbound, and the service's
-- default limit. Nullable without a default: adding them rewrites no row.
ALTER TABLE api_keys ADD COLUMN partner_id TEXT;
ALTER TABLE api_keys ADD COLUMN rate_per_s DOUBLE PRECISION;
ALTER TABLE api_keys ADD COLUMN burst BIGINT;
