-- Conversations: many per user on one agent. Each has its own transcript, summary and lease (one turn at a time per
-- conversation); the agent's memory (blocks, archival passages) stays shared. Every existing user gets a default
-- conversation holding the transcript and summary they had, and the per-agent conversation state moves onto it.

CREATE TABLE conversations (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_default           INTEGER NOT NULL DEFAULT 0,
    title                TEXT NULL,
    title_source         TEXT NULL,
    model                TEXT NULL,
    archived             INTEGER NOT NULL DEFAULT 0,
    external_id          TEXT NULL,
    summary              TEXT NULL,
    summary_through_seq  INTEGER NOT NULL DEFAULT 0,
    reset_seq            INTEGER NOT NULL DEFAULT 0,
    lease_turn_id        TEXT NULL,
    lease_until          TEXT NULL,
    message_count        INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL,
    last_message_at      TEXT NULL,
    activity_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX ux_conversations_one_default ON conversations (user_id) WHERE is_default = 1;
CREATE INDEX ix_conversations_activity ON conversations (user_id, activity_at DESC, id DESC);

INSERT INTO conversations (id, user_id, is_default, summary, summary_through_seq, reset_seq, message_count, created_at, last_message_at, activity_at)
SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-'
           || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
       a.user_id, 1, a.summary, a.summary_through_seq, a.conversation_reset_seq,
       (SELECT COUNT(*) FROM messages m WHERE m.user_id = a.user_id),
       a.created_at,
       (SELECT MAX(m.created_at) FROM messages m WHERE m.user_id = a.user_id),
       COALESCE((SELECT MAX(m.created_at) FROM messages m WHERE m.user_id = a.user_id), a.created_at)
FROM agents a;

ALTER TABLE agents DROP COLUMN summary;
ALTER TABLE agents DROP COLUMN summary_through_seq;
ALTER TABLE agents DROP COLUMN conversation_reset_seq;
ALTER TABLE agents DROP COLUMN lease_turn_id;
ALTER TABLE agents DROP COLUMN lease_until;

-- A message belongs to a conversation; an assistant message a regenerate replaced points at its successor
-- (replaced_by_id), which keeps the old answer as an alternative of the same user message (reply_to_id).
ALTER TABLE messages ADD COLUMN conversation_id TEXT NULL REFERENCES conversations (id) ON DELETE CASCADE;
ALTER TABLE messages ADD COLUMN reply_to_id TEXT NULL;
ALTER TABLE messages ADD COLUMN replaced_by_id TEXT NULL;
UPDATE messages SET conversation_id = (SELECT c.id FROM conversations c WHERE c.user_id = messages.user_id AND c.is_default = 1);
UPDATE messages SET reply_to_id = (SELECT t.user_message_id FROM turns t WHERE t.id = messages.turn_id) WHERE role = 'assistant';
CREATE INDEX ix_messages_conversation_seq ON messages (conversation_id, seq DESC);
CREATE INDEX ix_messages_reply_to ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;

-- A turn belongs to a conversation: one running turn per conversation (no longer per agent).
ALTER TABLE turns ADD COLUMN conversation_id TEXT NULL REFERENCES conversations (id) ON DELETE CASCADE;
UPDATE turns SET conversation_id = (SELECT c.id FROM conversations c WHERE c.user_id = turns.user_id AND c.is_default = 1);
DROP INDEX IF EXISTS ux_turns_one_running_per_agent;
CREATE UNIQUE INDEX ux_turns_one_running_per_conversation ON turns (conversation_id) WHERE status = 'running';
CREATE INDEX ix_turns_user_running ON turns (user_id) WHERE status = 'running';
