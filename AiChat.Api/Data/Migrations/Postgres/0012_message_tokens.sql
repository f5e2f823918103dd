-- Each message's token count (o200k_base, its text only), written with the message, so assembling a context and
-- reporting an agent's status read stored counts instead of tokenising the history on every turn. Rows written before
-- this migration have none; they are counted when read.
ALTER TABLE messages ADD COLUMN tokens INTEGER NULL;

-- How many of a conversation's current messages its agent forgot with a reset (those up to reset_seq): the agent's
-- status reports message_count - forgotten_count, kept with every write, instead of counting the rows each time.
ALTER TABLE conversations ADD COLUMN forgotten_count INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET forgotten_count = (
    SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id AND m.seq <= conversations.reset_seq AND m.replaced_by_id IS NULL);
