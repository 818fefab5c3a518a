-- +goose Up
-- What a lease's holder says it is doing (outbox/lease SetNote), so every
-- replica can tell whether a consumer is being consumed, not only whether
-- someone holds its lease: the consumer runtime's readiness reads it.
-- note_token is the token of the term that wrote the note: a note left by an
-- earlier term does not describe the current one.
ALTER TABLE outbox.leases
    ADD COLUMN note       text   NOT NULL DEFAULT '',
    ADD COLUMN note_token bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE outbox.leases DROP COLUMN note, DROP COLUMN note_token;
