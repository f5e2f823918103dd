-- Personal API keys: only the SHA-256 of a key is kept (the key is shown once); revoking deletes the row.
-- last_used_at is written at most once a minute per key.

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    prefix        text NOT NULL,
    key_hash      text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NULL,
    last_used_at  timestamptz NULL
);
CREATE INDEX ix_api_keys_user ON api_keys (user_id, created_at, id);

-- Which conversation an OpenAI-compatible client is in when it names none: the hashes of the transcripts it may resend
-- (one per answer; the newest is where the conversation stands, older ones recognise a retried request).
CREATE TABLE client_threads (
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    history_hash     text NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, history_hash)
);
CREATE INDEX ix_client_threads_hash ON client_threads (user_id, history_hash);
