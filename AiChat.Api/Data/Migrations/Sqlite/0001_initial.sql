-- AiChat store, version 1. Ids are text uuids, instants are fixed-width UTC ISO-8601 text,
-- money is integer nano-USD (1e-9): the same data model as the Postgres migration.

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL,
    email_normalized  TEXT NOT NULL UNIQUE,
    name              TEXT NULL,
    role              TEXT NOT NULL DEFAULT 'user',
    password_hash     TEXT NULL,
    external_id       TEXT NULL UNIQUE,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    runtime         TEXT NOT NULL,
    external_id     TEXT NULL,
    status          TEXT NOT NULL DEFAULT 'ready',
    model           TEXT NULL,
    summary         TEXT NULL,
    lease_turn_id   TEXT NULL,
    lease_until     TEXT NULL,
    created_at      TEXT NOT NULL,
    last_active_at  TEXT NULL
);

CREATE TABLE memory_blocks (
    agent_id     TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    value        TEXT NOT NULL,
    char_limit   INTEGER NOT NULL,
    description  TEXT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (agent_id, label)
);

CREATE TABLE archival_passages (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    content     TEXT NOT NULL,
    tags        TEXT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX ix_archival_passages_agent ON archival_passages (agent_id, created_at);

-- Full-text index over archival passages, kept in step by triggers (external-content FTS5 table).
CREATE VIRTUAL TABLE archival_passages_fts USING fts5 (content, content = 'archival_passages', content_rowid = 'rowid', tokenize = 'porter unicode61');
CREATE TRIGGER archival_passages_ai AFTER INSERT ON archival_passages BEGIN
    INSERT INTO archival_passages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER archival_passages_ad AFTER DELETE ON archival_passages BEGIN
    INSERT INTO archival_passages_fts (archival_passages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER archival_passages_au AFTER UPDATE ON archival_passages BEGIN
    INSERT INTO archival_passages_fts (archival_passages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO archival_passages_fts (rowid, content) VALUES (new.rowid, new.content);
END;

CREATE TABLE turns (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id              TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    status                TEXT NOT NULL,
    idempotency_key       TEXT NULL,
    request_hash          TEXT NULL,
    user_message_id       TEXT NULL,
    assistant_message_id  TEXT NULL,
    error_code            TEXT NULL,
    created_at            TEXT NOT NULL,
    completed_at          TEXT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX ix_turns_status ON turns (status) WHERE status = 'running';

CREATE TABLE messages (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    turn_id            TEXT NULL REFERENCES turns (id) ON DELETE CASCADE,
    role               TEXT NOT NULL,
    content            TEXT NOT NULL,
    status             TEXT NOT NULL,
    prompt_tokens      INTEGER NULL,
    completion_tokens  INTEGER NULL,
    cost_nanousd       INTEGER NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX ix_messages_user_seq ON messages (user_id, seq DESC);

CREATE TABLE turn_events (
    turn_id     TEXT NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    event       TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (turn_id, seq)
);

CREATE TABLE billing_accounts (
    user_id                  TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    max_budget_nanousd       INTEGER NOT NULL,
    personal_limit_nanousd   INTEGER NULL,
    duration                 TEXT NOT NULL,
    period_anchor            TEXT NOT NULL,
    litellm_user_id          TEXT NULL,
    litellm_key_protected    TEXT NULL,
    updated_at               TEXT NOT NULL
);

CREATE TABLE ledger_entries (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,
    state              TEXT NOT NULL,
    amount_nanousd     INTEGER NOT NULL,
    model              TEXT NULL,
    prompt_tokens      INTEGER NULL,
    completion_tokens  INTEGER NULL,
    turn_id            TEXT NULL,
    created_at         TEXT NOT NULL,
    expires_at         TEXT NULL
);
CREATE INDEX ix_ledger_entries_user_time ON ledger_entries (user_id, created_at);
