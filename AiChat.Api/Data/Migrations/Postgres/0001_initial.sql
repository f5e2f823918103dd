-- AiChat store, version 1. Money is integer nano-USD (1e-9), exact on both stores.

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email             text NOT NULL,
    email_normalized  text NOT NULL UNIQUE,
    name              text NULL,
    role              text NOT NULL DEFAULT 'user',
    password_hash     text NULL,
    external_id       text NULL UNIQUE,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE agents (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    runtime         text NOT NULL,
    external_id     text NULL,
    status          text NOT NULL DEFAULT 'ready',
    model           text NULL,
    summary         text NULL,
    lease_turn_id   uuid NULL,
    lease_until     timestamptz NULL,
    created_at      timestamptz NOT NULL,
    last_active_at  timestamptz NULL
);

CREATE TABLE memory_blocks (
    agent_id     uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    label        text NOT NULL,
    value        text NOT NULL,
    char_limit   integer NOT NULL,
    description  text NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (agent_id, label)
);

CREATE TABLE archival_passages (
    id          uuid PRIMARY KEY,
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    content     text NOT NULL,
    tags        text NULL,
    created_at  timestamptz NOT NULL,
    search      tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX ix_archival_passages_agent ON archival_passages (agent_id, created_at);
CREATE INDEX ix_archival_passages_search ON archival_passages USING gin (search);

CREATE TABLE turns (
    id                    uuid PRIMARY KEY,
    user_id               uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id              uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    status                text NOT NULL,
    idempotency_key       text NULL,
    request_hash          text NULL,
    user_message_id       uuid NULL,
    assistant_message_id  uuid NULL,
    error_code            text NULL,
    created_at            timestamptz NOT NULL,
    completed_at          timestamptz NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX ix_turns_status ON turns (status) WHERE status = 'running';

CREATE TABLE messages (
    seq                bigserial PRIMARY KEY,
    id                 uuid NOT NULL UNIQUE,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    turn_id            uuid NULL REFERENCES turns (id) ON DELETE CASCADE,
    role               text NOT NULL,
    content            text NOT NULL,
    status             text NOT NULL,
    prompt_tokens      integer NULL,
    completion_tokens  integer NULL,
    cost_nanousd       bigint NULL,
    created_at         timestamptz NOT NULL
);
CREATE INDEX ix_messages_user_seq ON messages (user_id, seq DESC);

CREATE TABLE turn_events (
    turn_id     uuid NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    event       text NOT NULL,
    data        text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (turn_id, seq)
);

CREATE TABLE billing_accounts (
    user_id                  uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    max_budget_nanousd       bigint NOT NULL,
    personal_limit_nanousd   bigint NULL,
    duration                 text NOT NULL,
    period_anchor            timestamptz NOT NULL,
    litellm_user_id          text NULL,
    litellm_key_protected    text NULL,
    updated_at               timestamptz NOT NULL
);

CREATE TABLE ledger_entries (
    id                 uuid PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind               text NOT NULL,
    state              text NOT NULL,
    amount_nanousd     bigint NOT NULL,
    model              text NULL,
    prompt_tokens      integer NULL,
    completion_tokens  integer NULL,
    turn_id            uuid NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NULL
);
CREATE INDEX ix_ledger_entries_user_time ON ledger_entries (user_id, created_at);
