-- A turn's outcome lives on its row: the failure (status, code, detail, figures) and the budget left when it ended.

ALTER TABLE turns ADD COLUMN error_status integer NULL;
ALTER TABLE turns ADD COLUMN error_detail text NULL;
ALTER TABLE turns ADD COLUMN error_figures text NULL;
ALTER TABLE turns ADD COLUMN budget_remaining_nanousd bigint NULL;
