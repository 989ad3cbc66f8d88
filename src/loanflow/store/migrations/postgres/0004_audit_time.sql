-- Engagement counts audit entries per day: "sessions and actions today".
CREATE INDEX audit_log_time ON audit_log (at_ns);
