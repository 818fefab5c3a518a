-- +goose Up
-- outbox.Append now sends the NOTIFY itself, in a statement of its own
-- right after the insert; the statement trigger cost 13-27 % of a
-- single-event write.
DROP TRIGGER wake_relay ON outbox.events;
DROP FUNCTION outbox.wake_relay();

-- +goose Down
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
