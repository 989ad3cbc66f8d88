-- The business review queue (GET /v1/reviews, POST /v1/applications/{id}/review,
-- store/review_queue.py): beside 0008's review_decision and reviewed_at_ns, the
-- operator's reason and who decided (the API key id, or the dashboard session's actor).
-- All four are written together, once, by one conditional UPDATE
-- (`WHERE route = 'manual_review' AND review_decision IS NULL`): a decision is final.
-- Nullable columns without a default: adding them rewrites no row, and an insert by the
-- processor (which never names them) costs nothing more.
ALTER TABLE applications ADD COLUMN review_reason TEXT;
ALTER TABLE applications ADD COLUMN reviewed_by TEXT;
