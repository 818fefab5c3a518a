-- +goose Up
CREATE SCHEMA orders;

-- An order. lines is [{"sku","quantity","unit_price":{"amount","currency"}}]
-- priced from the module's own price list when it was placed. changes
-- counts its status changes (status_changes.seq).
CREATE TABLE orders.orders (
    id                  uuid        PRIMARY KEY,
    customer_id         uuid        NOT NULL,
    lines               jsonb       NOT NULL,
    currency            text        NOT NULL,
    total               bigint      NOT NULL CHECK (total > 0),
    status              text        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    reason              text        NOT NULL DEFAULT '',
    cancel_requested_at timestamptz,
    changes             int         NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX orders_of_customer ON orders.orders (customer_id, created_at);

-- Every status change of every order, the first (to pending) included.
CREATE TABLE orders.status_changes (
    order_id    uuid        NOT NULL,
    seq         int         NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_status text        NOT NULL,
    to_status   text        NOT NULL,
    cause       text        NOT NULL,
    PRIMARY KEY (order_id, seq)
);

-- The module's own copy of inventory's catalogue prices, from its events
-- (inventory.item_added.v1, inventory.price_changed.v1): the newest
-- version wins, whatever order they arrive in.
CREATE TABLE orders.prices (
    sku        text   PRIMARY KEY,
    unit_price bigint NOT NULL,
    currency   text   NOT NULL,
    version    bigint NOT NULL
);

-- The customers orders may be placed for, and the currency of their
-- credit, from customers.customer_created.v1.
CREATE TABLE orders.customers (
    id       uuid PRIMARY KEY,
    currency text NOT NULL
);

-- +goose Down
DROP SCHEMA orders CASCADE;
