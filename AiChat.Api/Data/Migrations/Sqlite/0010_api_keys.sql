-- Personal API keys: only the SHA-256 of a key is kept (the key is shown once); revoking deletes the row.
-- last_used_at is written at most once a minute per key.

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NULL,
    last_used_at  TEXT NULL
);
CREATE INDEX ix_api_keys_user ON api_keys (user_id, created_at, id);

-- Which conversation an OpenAI-compatible client is in when it names none: the hashes of the transcripts it may resend
-- (one per answer; the newest is where the conversation stands, older ones recognise a retried request).
CREATE TABLE client_threads (
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    history_hash     TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (conversation_id, history_hash)
);
CREATE INDEX ix_client_threads_hash ON client_threads (user_id, history_hash);
