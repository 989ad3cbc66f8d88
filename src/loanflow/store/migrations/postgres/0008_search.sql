-- The search (GET /v1/applications, store/search.py): newest first, paged on
-- (received_at_ns, id), every filter served by an index that yields its rows already in
-- page order: (filter, received_at_ns, id), or a partial (received_at_ns, id).
--
--   filter                       index
--   (none), since, until         applications_time           (received_at_ns, id)
--   status                       applications_status         (status, received_at_ns, id)
--   route                        applications_route          (route, ...) route IS NOT NULL
--   channel                      applications_channel        (channel, received_at_ns, id)
--   partner_id                   applications_partner        (partner_id, ...) IS NOT NULL
--   external_id                  applications_external       (external_id, ...) IS NOT NULL
--   review=open                  applications_review_open    (route, received_at_ns, id)
--                                WHERE route = 'manual_review' AND review_decision IS NULL
--   review=decided               applications_review_decided (received_at_ns, id) WHERE
--                                review_decision IS NOT NULL
--
-- since/until beside a filter are a range on its index's second column. With several
-- filters the planner takes one index and checks the others on the rows it yields.
-- Each index costs the backend CPU on every insert (benchmarks/insert_cost.py): the
-- partial ones only for rows they hold (route: stored rows; review_open: rows routed to
-- review; review_decided: none at insert), and the two time indexes of before
-- (received_at_ns; external_id) are replaced, not kept beside their composites.

-- The route the processor recommended (pipeline/route.py); NULL for a rejected or dead-
-- lettered application. Written by every store write from now on.
ALTER TABLE applications ADD COLUMN route TEXT;
-- The business review's decision and its time: NULL until the review queue (not built
-- yet) records one. review=open is "routed to manual_review, no decision yet".
ALTER TABLE applications ADD COLUMN review_decision TEXT;
ALTER TABLE applications ADD COLUMN reviewed_at_ns BIGINT;

-- The route of the applications stored so far, from their documents.
UPDATE applications SET route = document->'assessment'->'enrichment'->>'route'
    WHERE status = 'stored' AND document->'assessment'->'enrichment'->>'route' IS NOT NULL;

DROP INDEX IF EXISTS applications_received;
DROP INDEX IF EXISTS applications_external;
CREATE INDEX applications_time ON applications (received_at_ns, id);
CREATE INDEX applications_status ON applications (status, received_at_ns, id);
CREATE INDEX applications_route ON applications (route, received_at_ns, id)
    WHERE route IS NOT NULL;
CREATE INDEX applications_channel ON applications (channel, received_at_ns, id);
CREATE INDEX applications_partner ON applications (partner_id, received_at_ns, id)
    WHERE partner_id IS NOT NULL;
CREATE INDEX applications_external ON applications (external_id, received_at_ns, id)
    WHERE external_id IS NOT NULL;
-- Led by route, a constant here, so SQLite takes it over applications_route (route=?).
CREATE INDEX applications_review_open ON applications (route, received_at_ns, id)
    WHERE route = 'manual_review' AND review_decision IS NULL;
CREATE INDEX applications_review_decided ON applications (received_at_ns, id)
    WHERE review_decision IS NOT NULL;
-- Which routes have a decision is one fact, not two independent ones: without these
-- statistics the planner would take most manual_review rows for open (review_decision is
-- NULL on nearly every row) and read applications_route instead. Costs ANALYZE only.
CREATE STATISTICS applications_route_review (mcv) ON route, review_decision FROM applications;
