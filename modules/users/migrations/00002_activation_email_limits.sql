-- +goose Up
-- How often each address asked for a new activation email, so that
-- POST /api/v1/users/activation-emails can refuse too many (429) on every
-- replica alike. One row per address asked about, whether or not an account
-- has it, keyed by the SHA-256 of the lower-cased address: the table names
-- nobody. Rows older than a day are swept (users.Module.Run).
CREATE TABLE users.activation_email_limits (
    email_key   bytea       PRIMARY KEY CHECK (length(email_key) = 32),
    last_at     timestamptz NOT NULL,
    day_started timestamptz NOT NULL,
    day_count   int         NOT NULL CHECK (day_count > 0)
);
CREATE INDEX activation_email_limits_last_at ON users.activation_email_limits (last_at);

-- +goose Down
DROP TABLE users.activation_email_limits;
