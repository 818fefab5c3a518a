-- +goose Up
-- The saga runtime's tables (outbox/saga): one row per saga instance, its
-- append-only history of transitions, and its timers. Modules never name
-- this schema; they reach it through the runtime.
CREATE SCHEMA saga;

-- An instance: its state, status (running, completed, stuck, cancelled),
-- version (raised by each transition to another state; timers carry the
-- version they were set at) and the saga's own data.
CREATE TABLE saga.instances (
    saga_type  text        NOT NULL,
    id         text        NOT NULL,
    state      text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('running', 'completed', 'stuck', 'cancelled')),
    version    bigint      NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (saga_type, id)
);
-- Listing by type and status, newest first; the start-up check reads the
-- instances that are not completed.
CREATE INDEX instances_by_status ON saga.instances (saga_type, status, updated_at DESC);
CREATE INDEX instances_open ON saga.instances (status) WHERE status IN ('running', 'stuck');

-- Every step of every instance, stale ones included, in the order they
-- committed. sent lists the events and commands the step appended
-- ([{"type","id"}]), so a reply can be traced to the command it answers.
CREATE TABLE saga.history (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    saga_type    text        NOT NULL,
    id           text        NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind         text        NOT NULL,
    from_state   text        NOT NULL,
    to_state     text        NOT NULL,
    version      bigint      NOT NULL,
    cause_type   text        NOT NULL,
    cause_id     text        NOT NULL DEFAULT '',
    causation_id text        NOT NULL DEFAULT '',
    due_at       timestamptz,
    sent         jsonb       NOT NULL DEFAULT '[]',
    note         text        NOT NULL DEFAULT ''
);
CREATE INDEX history_of_instance ON saga.history (saga_type, id, seq);

-- The history is append-only: no step, operator or bug rewrites it.
-- +goose StatementBegin
CREATE FUNCTION saga.history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'saga.history is append-only';
END $$;
-- +goose StatementEnd
CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON saga.history
    FOR EACH ROW EXECUTE FUNCTION saga.history_is_append_only();

-- A timer of an instance, one per name, due at fire_at; version is the
-- instance's version when it was set: a timer that fires after a later
-- transition is stale and does nothing. attempts counts handler failures.
CREATE TABLE saga.timers (
    saga_type text        NOT NULL,
    id        text        NOT NULL,
    name      text        NOT NULL,
    version   bigint      NOT NULL,
    fire_at   timestamptz NOT NULL,
    attempts  int         NOT NULL DEFAULT 0,
    PRIMARY KEY (saga_type, id, name)
);
CREATE INDEX timers_due ON saga.timers (fire_at);

-- +goose Down
DROP SCHEMA saga CASCADE;
