-- The daily reconciliation opens exceptions of its own: a third source. SQLite cannot change
-- a CHECK constraint in place, so the table is copied into one with the new constraint.
CREATE TABLE exceptions_v2 (
    id             TEXT   NOT NULL PRIMARY KEY,
    event_id       TEXT   NOT NULL UNIQUE,
    reason         TEXT   NOT NULL,
    state          TEXT   NOT NULL CHECK (state IN ('open','retrying','resolved')),
    detail         TEXT   NOT NULL,
    evidence       TEXT   NOT NULL,
    order_ref      TEXT,
    deadline       BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    resolution     TEXT,
    source         TEXT   NOT NULL DEFAULT 'ledger' CHECK (source IN ('ledger','dlq','reconciliation')),
    stream_seq     BIGINT,
    retries        BIGINT NOT NULL DEFAULT 0 CHECK (retries >= 0),
    retry_event_id TEXT,
    sku            TEXT,
    location       TEXT
);
INSERT INTO exceptions_v2 (id, event_id, reason, state, detail, evidence, order_ref, deadline,
    created_at, updated_at, resolution, source, stream_seq, retries, retry_event_id, sku, location)
    SELECT id, event_id, reason, state, detail, evidence, order_ref, deadline,
    created_at, updated_at, resolution, source, stream_seq, retries, retry_event_id, sku, location
    FROM exceptions;
DROP TABLE exceptions;
ALTER TABLE exceptions_v2 RENAME TO exceptions;
CREATE INDEX exceptions_by_state ON exceptions (state, reason, created_at);
CREATE INDEX exceptions_by_retry_event ON exceptions (retry_event_id);

-- The daily reconciliation (docs/operations.md, "Reconciliation"; decision 45). Its
-- runs and items live only in the ledger database: they are not events, so a ledger rebuilt
-- from the stream has none; `stockctl reconcile --date D` computes them again.

-- One row per run. A scheduled run claims its date first: the partial unique index lets one
-- ledger process run a date's scheduled reconciliation, however many run.
CREATE TABLE reconciliation_runs (
    run_id       TEXT   NOT NULL PRIMARY KEY,
    recon_date   TEXT   NOT NULL,
    run_kind     TEXT   NOT NULL CHECK (run_kind IN ('manual','scheduled')),
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    is_current   BIGINT NOT NULL DEFAULT 0 CHECK (is_current IN (0, 1)),
    passed       BIGINT CHECK (passed IN (0, 1)),
    summary      TEXT,
    reports      TEXT   NOT NULL
);
CREATE UNIQUE INDEX reconciliation_runs_scheduled ON reconciliation_runs (recon_date) WHERE run_kind = 'scheduled';
CREATE INDEX reconciliation_runs_by_date ON reconciliation_runs (recon_date, is_current);

-- One row per item of a run: a payment event, a movement, a report line or a capture the
-- report lacks, in one bucket of one checkpoint. `amount` is an exact decimal as text.
-- A deferred item is settled (`settled_on`, `settled_bucket`) by the later run that matched
-- or unmatched it.
CREATE TABLE reconciliation_items (
    run_id          TEXT   NOT NULL,
    checkpoint      TEXT   NOT NULL CHECK (checkpoint IN ('payment_to_stock','stock_to_payment','provider_to_ledger')),
    item_key        TEXT   NOT NULL,
    recon_date      TEXT   NOT NULL,
    origin_date     TEXT   NOT NULL,
    bucket          TEXT   NOT NULL CHECK (bucket IN ('matched','unmatched','deferred')),
    reason          TEXT,
    action          TEXT   NOT NULL,
    provider        TEXT,
    payment_ref     TEXT,
    order_ref       TEXT,
    event_id        TEXT,
    kind            TEXT   NOT NULL,
    amount          TEXT,
    currency        TEXT,
    event_at        BIGINT NOT NULL,
    expected_by     TEXT,
    settled_on      TEXT,
    settled_bucket  TEXT,
    detail          TEXT   NOT NULL,
    PRIMARY KEY (run_id, checkpoint, item_key)
);
CREATE INDEX reconciliation_items_deferred ON reconciliation_items (bucket, recon_date);
CREATE INDEX reconciliation_items_by_key ON reconciliation_items (item_key);

-- The reconciliation reads a day's events and movements by time.
CREATE INDEX processed_events_by_time ON processed_events (processed_at);
CREATE INDEX ledger_entries_by_time ON ledger_entries (recorded_at);
