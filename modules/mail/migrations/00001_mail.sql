-- +goose Up
CREATE SCHEMA mail;

-- One row per email the mail module sent over SMTP or kept in its mailbox,
-- written in the same transaction as the consumer's inbox row. event_id is
-- the event that caused the email: UNIQUE, so one event never yields two
-- rows, and the handler looks it up before sending.
CREATE TABLE mail.messages (
    id          uuid        PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    user_id     text        NOT NULL,
    to_address  text        NOT NULL,
    subject     text        NOT NULL,
    text_body   text        NOT NULL,
    html_body   text        NOT NULL,
    transport   text        NOT NULL CHECK (transport IN ('smtp', 'mailbox')),
    provider_id text,
    sent_at     timestamptz NOT NULL DEFAULT now()
);

-- The mailbox is read by recipient, case-insensitively, newest first.
CREATE INDEX messages_to_address ON mail.messages (lower(to_address), sent_at DESC);

-- +goose Down
DROP SCHEMA mail CASCADE;
