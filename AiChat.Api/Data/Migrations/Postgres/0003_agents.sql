-- Built-in agents: the running summary's reach, and full-text search over the conversation.

ALTER TABLE agents ADD COLUMN summary_through_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN conversation_reset_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;
CREATE INDEX ix_messages_search ON messages USING gin (search);
