-- Operator actions are events (docs/decisions.md, decision 27): the ledger writes the audit
-- trail from `exception.action` events, which add three actions.
ALTER TABLE operator_actions DROP CONSTRAINT operator_actions_action_check;
ALTER TABLE operator_actions ADD CONSTRAINT operator_actions_action_check
    CHECK (action IN ('retry','resolve','dismiss','release','keep','stock_correct','retry_result'));
