-- +goose Up
CREATE SCHEMA customers;

-- A customer and its credit: reserved is the sum of its reservations in
-- status 'reserved', kept under the customer's row lock; available credit is
-- credit_limit - reserved.
CREATE TABLE customers.customers (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    currency     text        NOT NULL,
    credit_limit bigint      NOT NULL CHECK (credit_limit >= 0),
    reserved     bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= credit_limit),
    created_at   timestamptz NOT NULL
);

-- At most one row per order, whatever is redelivered: 'reserved' holds
-- credit, 'released' gave it back, 'refused' never held any, 'closed' means
-- the order was rejected or cancelled before its placement reached us, so a
-- placement that arrives later reserves nothing.
CREATE TABLE customers.reservations (
    order_id    uuid        PRIMARY KEY,
    customer_id uuid        NOT NULL REFERENCES customers.customers (id),
    amount      bigint      NOT NULL CHECK (amount >= 0),
    status      text        NOT NULL CHECK (status IN ('reserved', 'released', 'refused', 'closed')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reservations_of_customer ON customers.reservations (customer_id, created_at DESC);

-- +goose Down
DROP SCHEMA customers CASCADE;
