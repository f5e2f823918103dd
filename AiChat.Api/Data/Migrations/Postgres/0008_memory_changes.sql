-- The memory change log: every change of a core block, with who made it; seq orders it (newest first) for paging.
-- conversation_id is ready for conversations (none yet); reverts_change_id points a revert at the change it undid.

CREATE TABLE memory_changes (
    seq                bigserial PRIMARY KEY,
    id                 uuid NOT NULL UNIQUE,
    agent_id           uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    label              text NOT NULL,
    old_value          text NOT NULL,
    new_value          text NOT NULL,
    source_kind        text NOT NULL,
    turn_id            uuid NULL,
    conversation_id    uuid NULL,
    key_id             uuid NULL,
    reverts_change_id  uuid NULL,
    created_at         timestamptz NOT NULL
);
CREATE INDEX ix_memory_changes_agent ON memory_changes (agent_id, seq);
CREATE INDEX ix_memory_changes_agent_label ON memory_changes (agent_id, label, seq);

-- Which turn (and, later, conversation) saved an archival passage; null for passages saved through the API.
ALTER TABLE archival_passages ADD COLUMN turn_id uuid NULL;
ALTER TABLE archival_passages ADD COLUMN conversation_id uuid NULL;
