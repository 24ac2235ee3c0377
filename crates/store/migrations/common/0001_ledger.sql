-- The stock ledger. Entries are append-only: nothing here is ever updated or deleted.
-- Every rule that can be a constraint is one, so a bug in code cannot write a broken ledger.

-- One row per movement of units between two buckets of one (SKU, location).
CREATE TABLE ledger_entries (
    sku          TEXT   NOT NULL,
    location     TEXT   NOT NULL,
    seq          BIGINT NOT NULL CHECK (seq > 0),
    from_bucket  TEXT   NOT NULL CHECK (from_bucket IN ('available','reserved','sold','returned','written_off','external')),
    to_bucket    TEXT   NOT NULL CHECK (to_bucket IN ('available','reserved','sold','returned','written_off','external')),
    quantity     BIGINT NOT NULL CHECK (quantity > 0),
    event_id     TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (sku, location, seq),
    CHECK (from_bucket <> to_bucket)
);
CREATE INDEX ledger_entries_by_event ON ledger_entries (event_id);

-- Balances kept in the same transaction as the entries; `stockctl ledger verify` proves they
-- equal the sum of the entries.
CREATE TABLE balances (
    sku          TEXT   NOT NULL,
    location     TEXT   NOT NULL,
    available    BIGINT NOT NULL CHECK (available >= 0),
    reserved     BIGINT NOT NULL CHECK (reserved >= 0),
    sold         BIGINT NOT NULL CHECK (sold >= 0),
    returned     BIGINT NOT NULL CHECK (returned >= 0),
    written_off  BIGINT NOT NULL CHECK (written_off >= 0),
    external     BIGINT NOT NULL CHECK (external <= 0),
    seq          BIGINT NOT NULL CHECK (seq > 0),
    PRIMARY KEY (sku, location),
    CHECK (available + reserved + sold + returned + written_off + external = 0)
);

-- Exactly one outcome per processed event id.
CREATE TABLE processed_events (
    event_id      TEXT   NOT NULL PRIMARY KEY,
    kind          TEXT   NOT NULL,
    order_ref     TEXT,
    outcome       TEXT   NOT NULL CHECK (outcome IN ('moved','noop','exception')),
    reason        TEXT,
    outcome_json  TEXT   NOT NULL,
    envelope      TEXT   NOT NULL,
    stream_seq    BIGINT,
    processed_at  BIGINT NOT NULL,
    duplicates    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX processed_events_by_order ON processed_events (order_ref, processed_at);

-- Every outcome ever recorded, in order: an exception and the final outcome that replaced
-- it after an operator retry both stay here.
CREATE TABLE outcome_history (
    event_id      TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    outcome       TEXT   NOT NULL,
    reason        TEXT,
    outcome_json  TEXT   NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (event_id, version)
);

CREATE TABLE orders (
    order_ref     TEXT   NOT NULL PRIMARY KEY,
    state         TEXT   NOT NULL CHECK (state IN ('registered','reserved','sold','released')),
    reserved_by   TEXT,
    reserved_at   BIGINT,
    body          TEXT   NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX orders_by_reservation ON orders (state, reserved_at);

CREATE TABLE payment_refs (
    provider      TEXT   NOT NULL,
    payment_ref   TEXT   NOT NULL,
    order_ref     TEXT   NOT NULL,
    PRIMARY KEY (provider, payment_ref)
);

CREATE TABLE returns (
    reference     TEXT   NOT NULL PRIMARY KEY,
    order_ref     TEXT   NOT NULL,
    body          TEXT   NOT NULL
);

CREATE TABLE chargebacks (
    dispute_id    TEXT   NOT NULL PRIMARY KEY,
    order_ref     TEXT   NOT NULL,
    body          TEXT   NOT NULL
);

-- The exception queue: one row per problem, keyed by the event (or raw message) it is about.
CREATE TABLE exceptions (
    id            TEXT   NOT NULL PRIMARY KEY,
    event_id      TEXT   NOT NULL UNIQUE,
    reason        TEXT   NOT NULL,
    state         TEXT   NOT NULL CHECK (state IN ('open','retrying','resolved')),
    detail        TEXT   NOT NULL,
    evidence      TEXT   NOT NULL,
    order_ref     TEXT,
    deadline      BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    resolution    TEXT
);
CREATE INDEX exceptions_by_state ON exceptions (state, reason, created_at);
