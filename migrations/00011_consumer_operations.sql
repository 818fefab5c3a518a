-- +goose Up
-- Consumers an operator paused (outbox/consumer Pause), for every replica:
-- the holder of a paused consumer handles nothing until it is resumed.
CREATE TABLE inbox.paused_consumers (
    consumer  text        PRIMARY KEY,
    reason    text        NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now()
);

-- Dead letters by consumer in the order they are listed, and what /metrics
-- reads every scrape (count and oldest per consumer) without a sort.
CREATE INDEX dead_letters_consumer_failed_at ON inbox.dead_letters (consumer, failed_at);

-- +goose Down
DROP INDEX inbox.dead_letters_consumer_failed_at;
DROP TABLE inbox.paused_consumers;
