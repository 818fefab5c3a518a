-- +goose Up
-- Forgetting a person (outbox/privacy). Personal fields of events are kept
-- in the lake sealed with a key per person (AES-256-GCM); forgetting the
-- person destroys the key, which leaves the lake's copies unreadable
-- without changing them.
CREATE SCHEMA privacy;

-- One key per person (subject: the person's id, as the event catalog names
-- it), made when the first event with their personal data enters the
-- lake. Forgetting sets key to NULL for good: the row stays as a tombstone,
-- so that an event of theirs moved later is stored with its personal
-- fields null.
CREATE TABLE privacy.subject_keys (
    subject      text        PRIMARY KEY,
    key          bytea       CHECK (key IS NULL OR length(key) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    forgotten_at timestamptz,
    CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
);

-- Which lake events hold whose personal data (written by the lake's
-- mover): what forgetting a person finds the person's messages in the
-- streams by, without reading the whole lake.
CREATE TABLE privacy.lake_events (
    subject     text        NOT NULL,
    position    bigint      NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (subject, position)
);

-- Forget requests: done once the person's data is gone from the outbox,
-- the dead letters, dry-run records and the streams.
CREATE TABLE privacy.forget_requests (
    subject      text        PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz,
    passes       int         NOT NULL DEFAULT 0,
    removed      bigint      NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX forget_requests_pending ON privacy.forget_requests (requested_at) WHERE done_at IS NULL;

-- +goose Down
DROP SCHEMA privacy CASCADE;
