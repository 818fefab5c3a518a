-- +goose Up
CREATE SCHEMA ledger;

-- The source of truth: an append-only log of account events. Never updated
-- or deleted; (account_id, version) makes a lost update impossible.
CREATE TABLE ledger.entries (
    account_id    uuid        NOT NULL,
    version       bigint      NOT NULL CHECK (version >= 0),
    type          text        NOT NULL CHECK (type IN ('opened', 'deposited', 'withdrawn')),
    amount        bigint      NOT NULL CHECK (amount >= 0),
    balance_after bigint      NOT NULL CHECK (balance_after >= 0),
    occurred_at   timestamptz NOT NULL,
    event_id      uuid        NOT NULL,
    PRIMARY KEY (account_id, version)
);

-- The current balance: a projection of the log, updated in the same
-- transaction and rebuildable from it (cairn rebuild ledger).
CREATE TABLE ledger.accounts (
    id         uuid        PRIMARY KEY,
    owner      text        NOT NULL,
    currency   char(3)     NOT NULL,
    balance    bigint      NOT NULL CHECK (balance >= 0),
    version    bigint      NOT NULL,
    opened_at  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Responses to requests made with an Idempotency-Key, replayed on retry.
CREATE TABLE ledger.idempotency_keys (
    key          text        PRIMARY KEY,
    request_hash bytea       NOT NULL,
    status       int,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP SCHEMA ledger CASCADE;
