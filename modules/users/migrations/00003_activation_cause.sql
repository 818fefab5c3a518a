-- +goose Up
-- What an activation continues: the id of the users.activation_requested.v1
-- event that carried the token, and the correlation id of the sign-up.
-- users.account_activated.v1 carries them as its causation and correlation
-- ids, so the lake's lineage of a sign-up runs on to its activation. NULL
-- for tokens issued before.
ALTER TABLE users.activation_tokens
    ADD COLUMN requested_event_id uuid,
    ADD COLUMN correlation_id     text;

-- +goose Down
ALTER TABLE users.activation_tokens DROP COLUMN requested_event_id, DROP COLUMN correlation_id;
