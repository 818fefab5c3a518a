-- +goose Up
-- The lake (outbox/lake): every event, public and internal, kept for ever.
-- The relay moves published outbox rows here (lake.Mover); nothing else
-- writes, and nothing ever updates or deletes a row (see the triggers).
CREATE SCHEMA lake;

-- The mover's state: the last position given, the last time recorded (so
-- recorded_at never decreases with position), and each stream's highest
-- sequence moved (where a look-up of unacked rows starts).
CREATE TABLE lake.head (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    position    bigint      NOT NULL DEFAULT 0,
    recorded_at timestamptz NOT NULL DEFAULT '-infinity',
    streams     jsonb       NOT NULL DEFAULT '{}'
);
INSERT INTO lake.head DEFAULT VALUES;

-- One row per event. position is gap-free and strictly increasing in
-- publish order ((txid, seq) order of the outbox: commit order per key);
-- recorded_at is when the row entered the lake, never decreasing with
-- position, and the partition key: a month's partition holds one contiguous
-- run of positions, and closes for good when the month ends. stream_seq is
-- NULL only for an event whose publish ack was lost and that the stream no
-- longer held when it was looked up (expired by the stream's limits).
CREATE TABLE lake.events (
    position       bigint      NOT NULL,
    recorded_at    timestamptz NOT NULL,
    id             uuid        NOT NULL,
    type           text        NOT NULL,
    source         text        NOT NULL,
    subject        text        NOT NULL,
    time           timestamptz NOT NULL,
    correlation_id text        NOT NULL,
    causation_id   text,
    traceparent    text,
    visibility     text        NOT NULL CHECK (visibility IN ('public', 'internal')),
    stream         text        NOT NULL,
    stream_seq     bigint,
    data           jsonb       NOT NULL,
    PRIMARY KEY (position, recorded_at)
) PARTITION BY RANGE (recorded_at);

-- The audit trail and state of one entity; every event of a request or
-- flow; the effects of an event (lineage); a type's events; time ranges
-- (events are recorded in about time order, which is what BRIN needs).
CREATE INDEX events_subject ON lake.events (subject, position);
CREATE INDEX events_correlation ON lake.events (correlation_id, position);
-- Only events caused by another event are anyone's effects, so only
-- causation ids shaped like an event id (a UUID) are indexed: most events,
-- caused by requests (whose ids are not UUIDs), add no entry.
CREATE INDEX events_causation ON lake.events (causation_id)
    WHERE causation_id LIKE '________-____-____-____-____________';
CREATE INDEX events_type ON lake.events (type, position);
CREATE INDEX events_time ON lake.events USING brin (time);

-- Event ids, not partitioned: an id is in the lake at most once for ever,
-- and an id finds its event's partition.
CREATE TABLE lake.ids (
    id          uuid        PRIMARY KEY,
    position    bigint      NOT NULL,
    recorded_at timestamptz NOT NULL
);

-- Immutability. The application only inserts and selects; these triggers
-- refuse the rest from anyone, superusers included (privileges alone do
-- not bind a superuser or the tables' owner). Row triggers on lake.events
-- are cloned to every partition; a TRUNCATE trigger is not, so
-- lake.create_partition adds one to each.
-- +goose StatementBegin
CREATE FUNCTION lake.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the lake is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON lake.events
    FOR EACH ROW EXECUTE FUNCTION lake.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON lake.events
    FOR EACH STATEMENT EXECUTE FUNCTION lake.refuse_change();
CREATE TRIGGER ids_immutable BEFORE UPDATE OR DELETE ON lake.ids
    FOR EACH ROW EXECUTE FUNCTION lake.refuse_change();
CREATE TRIGGER ids_no_truncate BEFORE TRUNCATE ON lake.ids
    FOR EACH STATEMENT EXECUTE FUNCTION lake.refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON lake.events, lake.ids FROM PUBLIC;

-- lake.create_partition makes sure the month holding at has its partition
-- (lake.events_YYYY_MM). The mover calls it for this month and the next at
-- start and daily, and for the month of a row that found none.
-- +goose StatementBegin
CREATE FUNCTION lake.create_partition(at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := lo + interval '1 month';
    name text := 'events_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass('lake.' || name) IS NULL THEN
        EXECUTE format('CREATE TABLE lake.%I PARTITION OF lake.events FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
        EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON lake.%I FOR EACH STATEMENT EXECUTE FUNCTION lake.refuse_change()', name);
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON lake.%I FROM PUBLIC', name);
    END IF;
    RETURN name;
END
$$;
-- +goose StatementEnd
SELECT lake.create_partition(now());
SELECT lake.create_partition(now() + interval '1 month');

-- lake.redact removes the fields the event catalog marks secret: paths is a
-- JSON array of key paths, each an array of keys (["token"]).
-- +goose StatementBegin
CREATE FUNCTION lake.redact(data jsonb, paths jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    p jsonb;
BEGIN
    FOR p IN SELECT jsonb_array_elements(paths) LOOP
        data := data #- ARRAY(SELECT jsonb_array_elements_text(p));
    END LOOP;
    RETURN data;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP SCHEMA lake CASCADE;
