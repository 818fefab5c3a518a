-- +goose Up
-- Replays (outbox/replay): rebuilds, dry runs and seeding of consumers from
-- the lake. A run is executed by the replica holding its consumer's lease;
-- one that a crash or a takeover interrupted is started again by the next
-- holder. At most one run per consumer is running.
CREATE SCHEMA replay;

CREATE TABLE replay.runs (
    id            uuid        PRIMARY KEY,
    consumer      text        NOT NULL,
    mode          text        NOT NULL CHECK (mode IN ('rebuild', 'dry_run', 'seed')),
    status        text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    -- The range as asked ("" for none), and as bounds: positions and
    -- CloudEvents times of the lake's events, from and to inclusive for
    -- positions, from <= time < to for times.
    from_spec     text        NOT NULL DEFAULT '',
    to_spec       text        NOT NULL DEFAULT '',
    from_position bigint,
    to_position   bigint,
    from_time     timestamptz,
    to_time       timestamptz,
    processed     bigint      NOT NULL DEFAULT 0,
    position      bigint      NOT NULL DEFAULT 0,
    effects       bigint      NOT NULL DEFAULT 0,
    failed        bigint      NOT NULL DEFAULT 0,
    error         text,
    -- How many times a holder started it (a takeover starts it again).
    attempts      int         NOT NULL DEFAULT 0,
    -- Where live consumption resumed: {"stream","start_seq","last_seq"}.
    handoff       jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE UNIQUE INDEX runs_one_running ON replay.runs (consumer) WHERE status = 'running';
CREATE INDEX runs_consumer ON replay.runs (consumer, created_at);

-- What a dry run would have done: one row per outside call it recorded
-- instead of making (outbox.Outside), or per event its handler failed on.
CREATE TABLE replay.effects (
    run_id   uuid   NOT NULL REFERENCES replay.runs (id) ON DELETE CASCADE,
    seq      bigint NOT NULL,
    event_id uuid   NOT NULL,
    position bigint NOT NULL,
    effect   text   NOT NULL,
    detail   jsonb  NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX effects_event ON replay.effects (event_id);

-- +goose Down
DROP SCHEMA replay CASCADE;
