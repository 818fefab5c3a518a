-- +goose Up
-- The consumer runtime's bookkeeping (outbox/consumer): which events each
-- consumer has handled, so a redelivered event has no second effect, and
-- the events it gave up on.
CREATE SCHEMA inbox;

CREATE TABLE inbox.processed (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_at ON inbox.processed (consumer, processed_at);

CREATE TABLE inbox.dead_letters (
    id         uuid        PRIMARY KEY,
    consumer   text        NOT NULL,
    event_id   uuid        NOT NULL,
    event_type text        NOT NULL,
    subject    text        NOT NULL,
    event_key  text        NOT NULL,
    payload    bytea       NOT NULL,
    attempts   int         NOT NULL,
    last_error text        NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer, event_id)
);

-- +goose Down
DROP SCHEMA inbox CASCADE;
