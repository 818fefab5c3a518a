-- +goose Up
CREATE SCHEMA users;

-- Accounts. The email is stored as the user typed it; uniqueness is
-- case-insensitive through the index below, so two sign-ups racing with
-- one address differ only in which one gets the unique violation.
CREATE TABLE users.accounts (
    id            uuid        PRIMARY KEY,
    username      text        NOT NULL,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('pending', 'active')),
    created_at    timestamptz NOT NULL,
    activated_at  timestamptz,
    CHECK ((status = 'active') = (activated_at IS NOT NULL))
);
CREATE UNIQUE INDEX accounts_email_lower ON users.accounts (lower(email));

-- Activation tokens, only as SHA-256 hashes: the raw token exists only in
-- the internal users.activation_requested.v1 event (for the mail module).
-- Kept after use, so that a second click on the link still answers 200.
CREATE TABLE users.activation_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users.accounts (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CHECK (expires_at > issued_at)
);
CREATE INDEX activation_tokens_user_id ON users.activation_tokens (user_id);

-- +goose Down
DROP SCHEMA users CASCADE;
