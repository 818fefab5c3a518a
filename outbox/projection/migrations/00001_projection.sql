-- +goose Up
-- Versioned projections (outbox/projection): which version of each
-- projection answers queries, and where every version stands. A version's
-- own tables live in its module's schema (<table>_v<version>); modules never
-- name this schema, they reach it through the package.
CREATE SCHEMA projection;

-- One row per projection: the version queries read (NULL until a first
-- version went live), and the one live before it, kept for a rollback.
CREATE TABLE projection.projections (
    name             text        PRIMARY KEY,
    live_version     int,
    previous_version int,
    switched_at      timestamptz
);

-- One row per version of a projection ever built.
--   state: building (from the lake), catching_up (from the stream),
--          verifying, live, failed (verification or a build error; never
--          switched), retired (was live, or rolled back);
--   build_target: the lake position the build reads up to;
--   lake_position: built from the lake up to here;
--   handoff_seq: the stream sequence the stream phase started at: every
--                event of the stream before it is in the lake at or before
--                lake_position;
--   stream_seq: the last stream sequence applied;
--   covered_position: every lake event at or before it is reflected;
--   pending: events of its types left on the stream after the last batch.
CREATE TABLE projection.versions (
    name             text        NOT NULL,
    version          int         NOT NULL,
    state            text        NOT NULL CHECK (state IN ('building', 'catching_up', 'verifying', 'live', 'failed', 'retired')),
    tables           text[]      NOT NULL,
    stream           text        NOT NULL,
    build_target     bigint      NOT NULL DEFAULT 0,
    lake_position    bigint      NOT NULL DEFAULT 0,
    handoff_seq      bigint,
    stream_seq       bigint      NOT NULL DEFAULT 0,
    covered_position bigint      NOT NULL DEFAULT 0,
    last_event_at    timestamptz,
    applied          bigint      NOT NULL DEFAULT 0,
    pending          bigint,
    verification     jsonb,
    error            text,
    rolled_back      boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    state_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (name, version)
);

-- projection.fence raises unless the lease (outbox.leases) still has this
-- token: the first statement of every transaction a version's holder
-- commits, so a holder whose term ended (frozen, cut off) commits nothing.
-- +goose StatementBegin
CREATE FUNCTION projection.fence(lease text, held_token bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM outbox.leases l WHERE l.name = lease AND l.token = held_token) THEN
        RAISE EXCEPTION 'projection: lease % is no longer held with token %', lease, held_token
            USING ERRCODE = 'PJ001';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP SCHEMA projection CASCADE;
