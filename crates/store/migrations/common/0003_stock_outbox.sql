-- The transactional outbox of the stock-change stream: one row per (SKU, location) a ledger
-- transaction touched, written in that same transaction, deleted by the relay once
-- JetStream acknowledged the message. A crash between commit and publish leaves the row
-- here, and the relay publishes it on restart.
CREATE TABLE stock_outbox (
    sku          TEXT   NOT NULL,
    location     TEXT   NOT NULL,
    seq          BIGINT NOT NULL,
    payload      TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (sku, location, seq)
);
