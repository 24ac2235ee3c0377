-- The stock policy (docs/trigger-matrix.md, "Stock policy"). Every `policy.changed` the
-- ledger applied, in the order it applied them: the last row is the policy in force; no
-- row means the default, `reserve_on_authorization`, under which every outcome recorded
-- before this migration was decided. Written by the batch path with the outcome of the
-- event, so a rebuild from the stream writes it again.
CREATE TABLE policy_changes (
    seq         BIGINT NOT NULL PRIMARY KEY,
    event_id    TEXT   NOT NULL UNIQUE,
    policy      TEXT   NOT NULL,
    previous    TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL
);

-- The stock policy each outcome was decided under (the policy in force for the event's
-- provider). NULL for outcomes recorded before this migration: they were all decided
-- under `reserve_on_authorization`.
ALTER TABLE processed_events ADD COLUMN policy TEXT;
