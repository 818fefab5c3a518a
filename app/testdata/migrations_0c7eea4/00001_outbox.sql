-- +goose Up
CREATE SCHEMA outbox;

-- One row per event waiting to be published, or published but not yet known
-- to be on disk in JetStream. The relay reads in (txid, seq) order, only
-- below the oldest running transaction (pg_snapshot_xmin), so a transaction
-- that commits late can never be skipped; see outbox/append.go for why txid
-- may be raised above the writer's own transaction id.
CREATE TABLE outbox.events (
    txid       bigint      NOT NULL,
    seq        bigint      GENERATED ALWAYS AS IDENTITY,
    event_id   uuid        NOT NULL,
    key        text        NOT NULL,
    subject    text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txid, seq)
);
CREATE INDEX events_key_txid ON outbox.events (key, txid);

-- Whether the relay is asleep, so that writers send a NOTIFY only then: a
-- NOTIFY on every commit serialises commits and more than halves write
-- throughput. Every insert reads this row, so it is rarely written.
CREATE TABLE outbox.relay (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    idle       boolean     NOT NULL DEFAULT true,
    leader     text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbox.relay DEFAULT VALUES;

-- How far the relay has published, written after every acknowledged batch,
-- so a new leader does not republish what a dead one already sent.
CREATE TABLE outbox.relay_cursor (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    txid       bigint      NOT NULL DEFAULT 0,
    seq        bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbox.relay_cursor DEFAULT VALUES;

-- +goose StatementBegin
CREATE FUNCTION outbox.wake_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT idle FROM outbox.relay) THEN
        PERFORM pg_notify('cairn_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER wake_relay AFTER INSERT ON outbox.events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.wake_relay();

-- +goose Down
DROP SCHEMA outbox CASCADE;
