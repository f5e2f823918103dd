-- The ledger's hot queries: the current period's settled and held amounts per user.
CREATE INDEX ix_ledger_entries_user_state ON ledger_entries (user_id, state, created_at);
ALTER TABLE ledger_entries ADD COLUMN reserved_nanousd bigint NULL;
