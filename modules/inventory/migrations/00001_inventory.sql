-- +goose Up
CREATE SCHEMA inventory;

-- An item of the catalogue and its stock. on_hand is what the warehouse
-- holds, reserved what pending orders hold of it; available is the
-- difference. version counts the item's catalogue changes (1 when added, +1
-- per price change), so a consumer of the catalogue events keeps the newest.
CREATE TABLE inventory.items (
    sku        text        PRIMARY KEY,
    name       text        NOT NULL,
    unit_price bigint      NOT NULL CHECK (unit_price > 0),
    currency   text        NOT NULL,
    on_hand    bigint      NOT NULL CHECK (on_hand >= 0),
    reserved   bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per reservation id, whatever is redelivered. 'reserved' holds
-- stock; 'committed' took it out of on_hand (the order was approved);
-- 'released' gave it back (or, with no lines, was released before it was
-- ever asked for, so a late reserve_stock reserves nothing); 'unavailable'
-- never held any. lines is [{"sku","quantity"}].
CREATE TABLE inventory.reservations (
    id         uuid        PRIMARY KEY,
    lines      jsonb       NOT NULL,
    status     text        NOT NULL CHECK (status IN ('reserved', 'committed', 'released', 'unavailable')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- +goose Down
DROP SCHEMA inventory CASCADE;
