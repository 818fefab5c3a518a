-- +goose Up
-- The relay leads by a lease (outbox.leases, name 'relay') instead of an
-- advisory lock, and fences its writes with the lease token.
--
-- relay_cursor also records, as of the cursor:
--   streams: the last stream sequence acked in each stream, so that a new
--     leader reads exactly what was published after the cursor (and not a
--     guessed number of the newest messages) before it publishes;
--   system_identifier: the PostgreSQL cluster the cursor's txids belong to.
--     A logical restore (pg_dump/pg_restore) into another cluster restarts
--     transaction ids lower, and new rows would sort below the cursor; the
--     relay detects that and renumbers the outbox (see relay/xidspace.go).
--   token: the lease token of the term that wrote it.
ALTER TABLE outbox.relay_cursor
    ADD COLUMN streams           jsonb  NOT NULL DEFAULT '{}',
    ADD COLUMN system_identifier bigint NOT NULL DEFAULT 0,
    ADD COLUMN token             bigint NOT NULL DEFAULT 0;

-- Events the relay could not publish at all (bigger than the server
-- accepts): moved here, logged at ERROR and counted in the relay's status,
-- so that one row can never hold up every later one.
CREATE TABLE outbox.parked (
    event_id   uuid        PRIMARY KEY,
    txid       bigint      NOT NULL,
    seq        bigint      NOT NULL,
    key        text        NOT NULL,
    subject    text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    reason     text        NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now()
);

-- An event id is used once: a caller-supplied id that is already waiting
-- in the outbox is refused at Append. (Uniqueness for ever, beyond the
-- rows still in the table, comes with the lake.)
CREATE UNIQUE INDEX events_event_id ON outbox.events (event_id);

-- +goose Down
DROP INDEX outbox.events_event_id;
DROP TABLE outbox.parked;
ALTER TABLE outbox.relay_cursor
    DROP COLUMN streams,
    DROP COLUMN system_identifier,
    DROP COLUMN token;
