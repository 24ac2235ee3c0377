-- Operator actions are events (docs/decisions.md, decision 27): the ledger writes the audit
-- trail from `exception.action` events, which add three actions. SQLite cannot change a
-- CHECK constraint in place, so the table is copied into one with the new constraint.
CREATE TABLE operator_actions_v2 (
    target   TEXT   NOT NULL,
    seq      BIGINT NOT NULL CHECK (seq > 0),
    action   TEXT   NOT NULL CHECK (action IN ('retry','resolve','dismiss','release','keep','stock_correct','retry_result')),
    actor    TEXT   NOT NULL CHECK (actor <> ''),
    reason   TEXT   NOT NULL,
    result   TEXT   NOT NULL,
    detail   TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (target, seq)
);
INSERT INTO operator_actions_v2 (target, seq, action, actor, reason, result, detail, at)
    SELECT target, seq, action, actor, reason, result, detail, at FROM operator_actions;
DROP TABLE operator_actions;
ALTER TABLE operator_actions_v2 RENAME TO operator_actions;
CREATE INDEX operator_actions_by_time ON operator_actions (at);
