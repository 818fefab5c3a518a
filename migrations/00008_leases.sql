-- +goose Up
-- Leadership as a lease (outbox/lease), for the relay and for every consumer.
-- A holder acts only while its lease is valid by its own monotonic clock,
-- which always ends before expires_at; a standby takes over only after
-- expires_at, and each takeover increments token, the fencing token writes of
-- a term carry. Unlike the session-level advisory locks this replaces, a
-- frozen or cut-off holder loses leadership after the TTL instead of after
-- TCP keepalive gives up (about 2 h 11 min on Linux defaults).
CREATE TABLE outbox.leases (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    token       bigint      NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE outbox.leases;
