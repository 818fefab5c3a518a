-- +goose Up
CREATE SCHEMA payments;

-- One row per payment id (the idempotency key sent to the gateway): what
-- the gateway answered, and whether the authorisation was voided since.
CREATE TABLE payments.payments (
    id               uuid        PRIMARY KEY,
    amount           bigint      NOT NULL CHECK (amount >= 0),
    currency         text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('authorized', 'declined', 'voided')),
    authorization_id text        NOT NULL DEFAULT '',
    reason           text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- +goose Down
DROP SCHEMA payments CASCADE;
