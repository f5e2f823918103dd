-- The memory change log: every change of a core block, with who made it; seq orders it (newest first) for paging.
-- conversation_id is ready for conversations (none yet); reverts_change_id points a revert at the change it undid.

CREATE TABLE memory_changes (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    agent_id           TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    label              TEXT NOT NULL,
    old_value          TEXT NOT NULL,
    new_value          TEXT NOT NULL,
    source_kind        TEXT NOT NULL,
    turn_id            TEXT NULL,
    conversation_id    TEXT NULL,
    key_id             TEXT NULL,
    reverts_change_id  TEXT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX ix_memory_changes_agent ON memory_changes (agent_id, seq);
CREATE INDEX ix_memory_changes_agent_label ON memory_changes (agent_id, label, seq);

-- Which turn (and, later, conversation) saved an archival passage; null for passages saved through the API.
ALTER TABLE archival_passages ADD COLUMN turn_id TEXT NULL;
ALTER TABLE archival_passages ADD COLUMN conversation_id TEXT NULL;
