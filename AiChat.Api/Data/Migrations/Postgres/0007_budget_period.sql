-- The period a billing account's sums were last taken over: the budget and what was spent in it read in one statement.
-- The period is still computed from the anchor at every use; a stored period that is not the current one is ignored.

ALTER TABLE billing_accounts ADD COLUMN period_start timestamptz NULL;
ALTER TABLE billing_accounts ADD COLUMN period_end timestamptz NULL;
