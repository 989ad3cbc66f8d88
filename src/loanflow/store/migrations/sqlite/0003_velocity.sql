-- Velocity observations (pipeline/velocity.py): derived data for review flags, not a
-- record. One row per hashed value and application; the processors prune old rows.
CREATE TABLE velocity (
    -- "<dimension>:<keyed hash of the normalised value>", never the value itself
    key            TEXT NOT NULL,
    -- the application's received_at in µs: fixed per application id, so this key
    -- also makes a redelivered application count once
    at_us          INTEGER NOT NULL,
    application_id TEXT NOT NULL,
    PRIMARY KEY (key, at_us, application_id)
) WITHOUT ROWID;
CREATE INDEX velocity_at ON velocity (at_us);
