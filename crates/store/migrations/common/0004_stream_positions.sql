-- How far into the event stream the ledger has applied (docs/decisions.md, decision 25).
-- Written in the same transaction as every batch, by each writer (a ledger process, a
-- replay, a rebuild) on its own row, so concurrent ledger processes never contend on it.
-- The ledger's position is the highest `applied_seq` of the stream's current incarnation
-- (`stream_created`, JetStream's creation time of the stream in Unix ms: a stream that was
-- lost and created again starts its sequences over). A row with `rebuilding = 1` is a
-- rebuild in progress: the ledger is behind until it ends.
CREATE TABLE stream_positions (
    stream          TEXT   NOT NULL,
    stream_created  BIGINT NOT NULL,
    writer          TEXT   NOT NULL,
    applied_seq     BIGINT NOT NULL CHECK (applied_seq >= 0),
    rebuilding      BIGINT NOT NULL DEFAULT 0 CHECK (rebuilding IN (0, 1)),
    PRIMARY KEY (stream, stream_created, writer)
);
