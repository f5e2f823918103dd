-- A turn's outcome lives on its row: the failure (status, code, detail, figures) and the budget left when it ended.

ALTER TABLE turns ADD COLUMN error_status INTEGER NULL;
ALTER TABLE turns ADD COLUMN error_detail TEXT NULL;
ALTER TABLE turns ADD COLUMN error_figures TEXT NULL;
ALTER TABLE turns ADD COLUMN budget_remaining_nanousd INTEGER NULL;
