-- The exception queue's workflow: where a problem came from, how often it was retried, and
-- an audit trail of every operator action. The ledger's own tables are untouched.

-- `ledger`: a business exception the ledger recorded (or an unprocessable message it
-- recorded before terminating it); `dlq`: a message JetStream gave up on, recorded by the
-- exception consumer from the dead-letter stream.
ALTER TABLE exceptions ADD COLUMN source TEXT NOT NULL DEFAULT 'ledger' CHECK (source IN ('ledger','dlq'));
-- The source message's position in the events stream, for dead letters.
ALTER TABLE exceptions ADD COLUMN stream_seq BIGINT;
-- Operator retries made so far; the n-th retry is published with `Nats-Msg-Id`
-- `<event id>:retry:<n>`.
ALTER TABLE exceptions ADD COLUMN retries BIGINT NOT NULL DEFAULT 0 CHECK (retries >= 0);
-- The event id a retry was published under when the row's own key is a stream position
-- (a message this release could not decode before, decodable now).
ALTER TABLE exceptions ADD COLUMN retry_event_id TEXT;
CREATE INDEX exceptions_by_retry_event ON exceptions (retry_event_id);

-- Every operator action, append-only: who (`actor`), when (`at`, Unix ms), what (`action`,
-- `result`, `detail` JSON) and why (`reason`). `target` is the exception id, or
-- `stock:<event id>` for a stock correction; `seq` numbers the actions of one target.
CREATE TABLE operator_actions (
    target   TEXT   NOT NULL,
    seq      BIGINT NOT NULL CHECK (seq > 0),
    action   TEXT   NOT NULL CHECK (action IN ('retry','resolve','stock_correct','retry_result')),
    actor    TEXT   NOT NULL CHECK (actor <> ''),
    reason   TEXT   NOT NULL,
    result   TEXT   NOT NULL,
    detail   TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (target, seq)
);
CREATE INDEX operator_actions_by_time ON operator_actions (at);
