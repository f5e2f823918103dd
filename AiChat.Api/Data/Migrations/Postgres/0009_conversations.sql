-- Conversations: many per user on one agent. Each has its own transcript, summary and lease (one turn at a time per
-- conversation); the agent's memory (blocks, archival passages) stays shared. Every existing user gets a default
-- conversation holding the transcript and summary they had, and the per-agent conversation state moves onto it.

CREATE TABLE conversations (
    id                   uuid PRIMARY KEY,
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_default           boolean NOT NULL DEFAULT false,
    title                text NULL,
    title_source         text NULL,
    model                text NULL,
    archived             boolean NOT NULL DEFAULT false,
    external_id          text NULL,
    summary              text NULL,
    summary_through_seq  bigint NOT NULL DEFAULT 0,
    reset_seq            bigint NOT NULL DEFAULT 0,
    lease_turn_id        uuid NULL,
    lease_until          timestamptz NULL,
    message_count        integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    last_message_at      timestamptz NULL,
    activity_at          timestamptz NOT NULL
);
CREATE UNIQUE INDEX ux_conversations_one_default ON conversations (user_id) WHERE is_default;
CREATE INDEX ix_conversations_activity ON conversations (user_id, activity_at DESC, id DESC);

INSERT INTO conversations (id, user_id, is_default, summary, summary_through_seq, reset_seq, message_count, created_at, last_message_at, activity_at)
SELECT gen_random_uuid(), a.user_id, true, a.summary, a.summary_through_seq, a.conversation_reset_seq,
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
ALTER TABLE messages ADD COLUMN conversation_id uuid NULL REFERENCES conversations (id) ON DELETE CASCADE;
ALTER TABLE messages ADD COLUMN reply_to_id uuid NULL;
ALTER TABLE messages ADD COLUMN replaced_by_id uuid NULL;
UPDATE messages m SET conversation_id = c.id FROM conversations c WHERE c.user_id = m.user_id AND c.is_default;
UPDATE messages m SET reply_to_id = t.user_message_id FROM turns t WHERE t.id = m.turn_id AND m.role = 'assistant';
CREATE INDEX ix_messages_conversation_seq ON messages (conversation_id, seq DESC);
CREATE INDEX ix_messages_reply_to ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;

-- A turn belongs to a conversation: one running turn per conversation (no longer per agent).
ALTER TABLE turns ADD COLUMN conversation_id uuid NULL REFERENCES conversations (id) ON DELETE CASCADE;
UPDATE turns t SET conversation_id = c.id FROM conversations c WHERE c.user_id = t.user_id AND c.is_default;
DROP INDEX IF EXISTS ux_turns_one_running_per_agent;
CREATE UNIQUE INDEX ux_turns_one_running_per_conversation ON turns (conversation_id) WHERE status = 'running';
CREATE INDEX ix_turns_user_running ON turns (user_id) WHERE status = 'running';
